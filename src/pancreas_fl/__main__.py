"""``python -m pancreas_fl``: run this FLAME node (the tutorial's entrypoint)."""

from pancreas_fl.entrypoint import main

if __name__ == "__main__":
    main()
