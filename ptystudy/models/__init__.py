"""The networks of phase E (Keras 3): physics layers, builders, training and inference."""
