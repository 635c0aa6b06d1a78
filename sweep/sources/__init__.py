"""Where a data set's rows come from, each source read into `(x, y, image_shape)` for `sweep.data`.

- `checks`: `DataError` and the rules every loaded pair of arrays obeys (npz files and python
  loaders share them);
- `rows`: stratified, seeded row selection (the splits and `dataset.max_rows`);
- `files`: CSV and npz files;
- `image_folder`: one sub-folder of images per class, as `keras.utils.image_dataset_from_directory`;
- `keras_cache`: MNIST, Fashion-MNIST, CIFAR-10/100 from the files Keras caches (never a download);
- `loader`: a user's function named by a REF (`dataset.loader`).
"""
