"""``python -m keras_gradreg``: the ``keras-gradreg`` command line."""

import sys

if __name__ == "__main__":
    try:
        from keras_gradreg.cli import main
    except KeyboardInterrupt:  # Ctrl-C before main() could catch it
        print("keras-gradreg: error: interrupted.", file=sys.stderr)
        raise SystemExit(130) from None
    main()
