"""Command-line interface: ``reprlab COMMAND``, one module per command.

Every user error prints one line ``error: <problem>. Fix: <fix>`` and exits with
status 2 (no traceback unless ``--debug``). ``reprlab train`` prints the run directory
as its last line of standard output. Options shared by several commands (``--data-dir``,
``--device``, ``--checkpoint``, ``--output-dir``) are defined once in :mod:`.common`.

Example:
    $ reprlab train configs/conv_ae.yaml model.latent_dim=32 train.epochs=5
    $ reprlab evaluate runs/conv_ae-fashion-mnist-20261123-101500
    $ reprlab analyze RUN_DIR --what embeddings traversal && reprlab report RUN_DIR
    $ reprlab cluster RUN_DIR --reducer umap --clusterer gmm --n-clusters 10
    $ reprlab detect --data fashion-mnist --normal-class 0 --data-dir ../shared/data
"""

from reprlab.cli.main import COMMANDS, build_parser, main

__all__ = ["COMMANDS", "build_parser", "main"]
