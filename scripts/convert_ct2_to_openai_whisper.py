#!/usr/bin/env python
"""Convert CTranslate2 Whisper weights (what faster-whisper runs) into an openai-whisper checkpoint.

    python scripts/convert_ct2_to_openai_whisper.py tiny.en out/tiny.en.pt
    python scripts/convert_ct2_to_openai_whisper.py path/to/ct2-folder out/model.pt
    python scripts/convert_ct2_to_openai_whisper.py tiny.en --check   # no torch needed

The fused attention projections are split (Q,K,V and cross-attention K,V) and the zero key biases
dropped; ``--check`` converts in memory and prints the dimensions, without writing (or torch).
Saving needs torch: pip install 'perslm-voice[openai-whisper]'.
"""

from __future__ import annotations

import argparse
import sys

from perslm_voice.stt.convert import convert, read_ct2, to_openai_whisper
from perslm_voice.stt.models import resolve_model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="tiny.en, base, or a CTranslate2 Whisper folder")
    parser.add_argument("out", nargs="?", help="the .pt file to write")
    parser.add_argument("--check", action="store_true", help="convert in memory, write nothing")
    args = parser.parse_args()
    folder = resolve_model(args.model)
    if args.check or not args.out:
        dims, state = to_openai_whisper(read_ct2(folder / "model.bin"))
        params = sum(a.size for a in state.values())
        print(f"{folder}: {len(state)} tensors, {params / 1e6:.1f} M parameters; dims {dims}")
        return 0
    try:
        import torch  # noqa: F401
    except ImportError:
        print("saving needs torch: pip install 'perslm-voice[openai-whisper]'", file=sys.stderr)
        return 1
    print(convert(folder, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
