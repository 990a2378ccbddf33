"""Talk to GZ-LLaVA: the chat app (`app.py`) and the terminal chat (`python -m gzllava.chat`).

    engine    ChatEngine: load a model, build the conversation prompt, stream answers (TextIteratorStreamer)
    speech    Transcriber: Whisper speech recognition (transformers pipeline or faster-whisper)
    tree      walk the Galaxy Zoo decision tree with the model's answer probabilities
    examples  synthetic example galaxies rendered at start
    ui        the Gradio Blocks layout and its handlers
    cli       the command line of app.py
"""

DEFAULT_MODEL = "outputs/demo/instruct/final"  # what `bash scripts/demo.sh` writes (the README's main job)
