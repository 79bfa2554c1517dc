"""``python -m bench [--scale small|national] [--only STAGE] [--list]``."""

from bench.harness import main

if __name__ == "__main__":
    raise SystemExit(main())
