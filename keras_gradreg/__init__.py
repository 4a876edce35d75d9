"""keras-gradreg: robust training by regularizing adversarial gradients.

Implements Yu et al., "Towards Robust Training of Neural Networks by
Regularizing Adversarial Gradients", for Keras 3 on TensorFlow.
"""

from keras_gradreg import regularizers
from keras_gradreg.model import GradRegModel

__version__ = "0.1.0"

__all__ = ["GradRegModel", "regularizers", "__version__"]
