"""The networks of phase E (Keras 3): physics layers, builders, training and inference.

Importing this package lets TensorFlow take GPU memory as it needs it instead of all of
it at start: LSQML (torch, in its worker process) may share the GPU with training.
TensorFlow starts (is imported and looks for GPUs) with its native start-up chatter kept
out of the output (``ptystudy.native_logs``), and with its oneDNN kernels on where the CPU
supports them (``ptystudy.machine``): this package is where the project imports TensorFlow.
"""

from ptystudy.machine import configure_tensorflow_environment
from ptystudy.native_logs import quiet_native_startup

configure_tensorflow_environment()

with quiet_native_startup():
    import tensorflow as tf

    _GPUS = tf.config.list_physical_devices("GPU")

for _gpu in _GPUS:
    try:
        tf.config.experimental.set_memory_growth(_gpu, True)
    except RuntimeError:  # the GPU is already initialised in this process; keep its setting
        pass
