"""The capabilities: what users do with a trained model, one folder each.

* :mod:`~reprlab.capabilities.analysis`: latent-space exploration and figures;
* :mod:`~reprlab.capabilities.clustering`: clustering of embeddings;
* :mod:`~reprlab.capabilities.anomaly`: anomaly detection.

They build on the layers below (runs, reporting, tasks, training, evaluation, features,
models, data, config, base) and never import each other (an import-linter contract in
the test suite checks it). What a capability adds to every run (a config section, a
post-run step) is registered by its ``plugin`` module, loaded through the
``reprlab.plugins`` entry points.
"""
