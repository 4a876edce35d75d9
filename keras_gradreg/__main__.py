"""``python -m keras_gradreg``: the ``keras-gradreg`` command line."""

from keras_gradreg.cli import main

if __name__ == "__main__":
    main()
