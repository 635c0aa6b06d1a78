"""What one trial does in a worker process, a concern a module.

- `keras_setup`: Keras and TensorFlow made ready in a worker, and reset between trials;
- `fit`: a seeded, compiled model trained epoch by epoch, each epoch's metrics handed on;
- `precision`: mixed precision: Keras' dtype policy set per trial, the output kept in float32;
- `evaluation`: a trained model measured: loss and accuracy, BN's variance shift, recalibrated BN;
- `metrics`: the names of what a trial reports (the record's metric schema).

`sweep.trainable` holds the Ray glue and re-exports what callers import from it.
"""
