"""Talk to GZ-LLaVA: a Gradio chat app about galaxy images (runs locally and as a Hugging Face Space).

    python app.py                                   # the README demo's model, outputs/demo/instruct/final
    python app.py --model org/gz-llava --port 7860  # any GZ-LLaVA folder or Hub id
On a Space the model comes from the GZLLAVA_MODEL variable (see docs/space.md).
"""

import sys

from gzllava.app.cli import main

if __name__ == "__main__":
    sys.exit(main())
