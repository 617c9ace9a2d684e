"""``python -m faceprint.cli``: the same command as ``faceprint``."""

from faceprint.cli import main

if __name__ == "__main__":
    main()
