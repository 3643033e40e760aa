"""The networks of phase E (Keras 3): physics layers, builders, training and inference.

Importing this package lets TensorFlow take GPU memory as it needs it instead of all of
it at start: LSQML (torch, in its worker process) may share the GPU with training.
"""

import tensorflow as tf

for _gpu in tf.config.list_physical_devices("GPU"):
    try:
        tf.config.experimental.set_memory_growth(_gpu, True)
    except RuntimeError:  # the GPU is already initialised in this process; keep its setting
        pass
