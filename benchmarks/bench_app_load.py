"""Load test of the chat app on loopback: N concurrent users x T turns with images, bounded, stops by itself.

Starts `python app.py` as a subprocess (a tiny random GZ-LLaVA unless --model is given; no Whisper), then
N gradio_client users each upload a galaxy and ask T questions in one conversation, streaming. Checks:
zero errors, every answer complete (equal to the engine's greedy answer for the same conversation,
computed in this process afterwards). Reports p50/p95 latency per turn and time to first token, the
server's peak RSS (sampled every 50 ms, children included) and, as references measured in the same run,
one user alone (latency) and the engine answering the same turns back to back with no server (throughput).

    OMP_NUM_THREADS=1 python benchmarks/bench_app_load.py                      # 16 users x 5 turns
    OMP_NUM_THREADS=1 python benchmarks/bench_app_load.py --users 32 --turns 3 --concurrency 4 --max-queue 64
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

QUESTIONS = ["Is there a bar through the centre of this galaxy?", "Is there any sign of a spiral arm pattern?",
             "How prominent is the central bulge?", "Could this be a disk viewed edge-on?",
             "Is the galaxy currently merging?", "Describe this galaxy's morphology."]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RssSampler(threading.Thread):
    """Peak resident memory of a process and its children, sampled every `interval` seconds."""

    def __init__(self, pid: int, interval: float = 0.05):
        super().__init__(daemon=True)
        self.process, self.interval, self.peak, self.last = psutil.Process(pid), interval, 0, 0
        self._stop_event = threading.Event()

    def rss(self) -> int:
        processes = [self.process, *self.process.children(recursive=True)]
        total = 0
        for p in processes:
            try:
                total += p.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total

    def run(self):
        while not self._stop_event.is_set():
            self.last = self.rss()
            self.peak = max(self.peak, self.last)
            time.sleep(self.interval)

    def stop(self):
        self._stop_event.set()
        self.join()


def user_session(url: str, image: Path, turns: int, max_new_tokens: int) -> list[dict]:
    """One user: upload the galaxy with the first question, then ask the rest in the same conversation."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    history: list[dict] = []
    records = []
    for turn in range(turns):
        files = [handle_file(str(image))] if turn == 0 else []
        for message in history:  # files come back as local paths; send them back as uploads
            for block in message["content"]:
                if block.get("type") == "file" and isinstance(block["file"], str):
                    block["file"] = handle_file(block["file"])
        question = QUESTIONS[turn % len(QUESTIONS)]
        start = time.perf_counter()
        first = None
        job = client.submit({"text": question, "files": files}, history, 0.0, 1.0, max_new_tokens, api_name="/chat")
        for output in job:
            chat = output[0]
            if first is None and chat and chat[-1]["role"] == "assistant" and chat[-1]["content"][0].get("text"):
                first = time.perf_counter() - start
        history = job.result()[0]
        records.append({"question": question, "latency": time.perf_counter() - start, "first_token": first,
                        "answer": history[-1]["content"][0].get("text", ""), "role": history[-1]["role"]})
    client.close()
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="GZ-LLaVA folder (default: a tiny random one, saved to a temp dir)")
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--max-queue", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=900, help="seconds before the whole test gives up")
    args = parser.parse_args()

    from gzllava.app.engine import ChatEngine, Conversation, read_image
    from gzllava.app.ui import WARN
    from gzllava.tiny import toy_galaxy

    work = Path(tempfile.mkdtemp(prefix="gzllava-load-"))
    model_dir = args.model
    if model_dir is None:
        from gzllava.hub import save_for_hub
        from gzllava.tiny import tiny_model_and_processor

        model_dir = str(save_for_hub(*tiny_model_and_processor(), work / "tiny"))
    images = []
    for user in range(args.users):
        path = work / f"galaxy_{user}.png"
        toy_galaxy(user, size=64).save(path)
        images.append(path)

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "GRADIO_ANALYTICS_ENABLED": "False"}
    server = subprocess.Popen(
        [sys.executable, str(REPO / "app.py"), "--model", model_dir, "--port", str(port), "--asr-model", "none",
         "--no-examples", "--concurrency", str(args.concurrency), "--max-queue", str(args.max_queue)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        import httpx

        deadline = time.time() + 300
        while True:
            if server.poll() is not None:
                raise SystemExit(f"app.py exited with {server.returncode}: {server.stderr.read()[-2000:]}")
            try:
                if httpx.get(url + "config", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                raise SystemExit("app.py did not start within 300 s")
            time.sleep(0.5)
        sampler = RssSampler(server.pid)
        sampler.start()
        time.sleep(0.5)
        idle_rss = sampler.last

        # reference: one user alone (the same work as one loaded user)
        solo = user_session(url, images[0], args.turns, args.max_new_tokens)

        start = time.perf_counter()
        with ThreadPoolExecutor(args.users) as pool:
            futures = [pool.submit(user_session, url, images[u], args.turns, args.max_new_tokens) for u in range(args.users)]
            results, errors = [], []
            for future in futures:
                try:
                    results.append(future.result(timeout=args.timeout))
                except Exception as error:  # noqa: BLE001 -- counted and reported
                    errors.append(f"{type(error).__name__}: {error}")
                    results.append(None)
        wall = time.perf_counter() - start
        time.sleep(0.3)
        sampler.stop()
    finally:
        server.terminate()
        server.wait(timeout=30)

    # every answer complete: the app's answer equals the engine's greedy answer for the same conversation
    engine = ChatEngine.from_pretrained(model_dir, device="cpu")
    wrong, answered = 0, 0
    direct_start = time.perf_counter()
    for user, records in enumerate(results):
        if records is None:
            continue
        conversation = Conversation(read_image(images[user]))  # what the server read from the upload
        for record in records:
            expected = engine.answer(conversation, record["question"], max_new_tokens=args.max_new_tokens)
            answered += 1
            if record["role"] != "assistant" or record["answer"].startswith(WARN) or record["answer"].strip() != expected:
                wrong += 1
            conversation.turns.append((record["question"], expected))
    direct = time.perf_counter() - direct_start

    latencies = np.array([r["latency"] for rs in results if rs for r in rs])
    firsts = np.array([r["first_token"] for rs in results if rs for r in rs if r["first_token"] is not None])
    solo_latency = np.array([r["latency"] for r in solo])
    turns = args.users * args.turns
    print(f"users x turns: {args.users} x {args.turns} = {turns} answers of {args.max_new_tokens} new tokens; "
          f"concurrency {args.concurrency}, max queue {args.max_queue}")
    print(f"errors: {len(errors)}  incomplete or different answers: {wrong} of {answered}")
    for error in errors[:5]:
        print("  ", error)
    print(f"latency per turn under load: p50 {np.percentile(latencies, 50):.2f} s, p95 {np.percentile(latencies, 95):.2f} s, "
          f"max {latencies.max():.2f} s")
    print(f"time to first token under load: p50 {np.percentile(firsts, 50):.2f} s, p95 {np.percentile(firsts, 95):.2f} s")
    print(f"reference, one user alone: p50 {np.percentile(solo_latency, 50):.2f} s "
          f"(load / alone: {np.percentile(latencies, 50) / np.percentile(solo_latency, 50):.1f}x)")
    print(f"throughput: app {turns / wall:.2f} answers/s; reference, engine back to back without a server "
          f"{answered / direct:.2f} answers/s (app / engine: {(turns / wall) / (answered / direct):.2f})")
    print(f"server RSS: idle {idle_rss / 2**20:.0f} MiB, peak under load {sampler.peak / 2**20:.0f} MiB "
          f"(peak / idle: {sampler.peak / max(idle_rss, 1):.2f})")
    if errors or wrong:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
