"""The ``cluster`` config section (registered with the run config by this capability).

Example:
    >>> from reprlab.config import RunConfig
    >>> RunConfig.from_dict({"cluster": {"enabled": True, "reducer": "pca"}}).cluster.reducer
    'pca'
"""

from __future__ import annotations

import re
from dataclasses import field
from typing import TYPE_CHECKING, Any

from reprlab.base.errors import ConfigError
from reprlab.base.validation import check_choice, check_int
from reprlab.capabilities.clustering.estimator import EmbeddingClusterer
from reprlab.config import register_section, section

if TYPE_CHECKING:
    from reprlab.config import RunConfig

#: What can be clustered and which split (mirrored by ``reprlab cluster``'s choices).
FEATURES: tuple[str, ...] = ("codes", "codes+hog", "pixels+hog", "codes+pixels+hog", "scattering")
SPLITS: tuple[str, ...] = ("train", "val", "test", "all")
#: What each choice of ``features`` is, in words (log lines, captions, notices).
FEATURE_NAMES: dict[str, str] = {
    "codes": "the model's codes",
    "codes+hog": "the model's codes + HOG descriptors of the images",
    "pixels+hog": "pixels + HOG descriptors of the images",
    "codes+pixels+hog": "the model's codes + pixels + HOG descriptors of the images",
    "scattering": "wavelet-scattering coefficients of the images",
}
#: The choices of ``features`` that do not use the trained model at all.
MODEL_FREE_FEATURES: frozenset[str] = frozenset(f for f in FEATURES if "codes" not in f.split("+"))
#: The number of clusters when ``n_clusters`` is unset and the images have no labels (or one class).
DEFAULT_N_CLUSTERS = 10


@register_section("cluster")
@section
class ClusterConfig:
    """Cluster the learned embeddings at the end of training (off unless ``enabled``).

    The options are those of :func:`reprlab.capabilities.clustering.cluster_run`: the ``split`` to
    encode (``train``, ``val``, ``test`` or ``all``), ``features`` (``codes``, ``codes+hog``,
    ``pixels+hog`` or ``codes+pixels+hog``: blocks of codes, pixels and HOG descriptors of the
    images, weighted equally; or ``scattering``: the images' compressed wavelet-scattering
    coefficients), ``scaling`` (none/standard/l2),
    ``reducer`` (none/pca/kpca/tsne/umap with ``n_components``, ``n_neighbors``,
    ``min_dist``), ``clusterer`` (kmeans/gmm/agglomerative/scan, ``covariance_type``,
    ``clusterer_options``: keyword arguments of the clusterer, e.g. ``{epochs: 10}`` or
    ``{init: spectral, n_restarts: 3}`` for scan),
    ``n_clusters`` (a number, ``auto`` with ``criterion`` silhouette/bic over
    ``k_range``, or unset: the number of classes of the clustered images when they have
    labels, else 10, with a logged notice naming it), ``max_points`` (a seeded subset), and ``checkpoint_curve`` (also plot
    training MSE against validation accuracy over the ``epoch_NNNN`` checkpoints; it needs
    ``train.checkpoint_every``, which is unset by default).
    ``random_state`` defaults to the run's seed. Results go to ``RUN_DIR/clustering/``,
    ``cluster/*`` keys of ``metrics.json`` and the report. The options are validated when
    ``enabled`` (or ``checkpoint_curve``) is true.

    Example:
        >>> ClusterConfig(enabled=True, n_clusters="auto", criterion="bic").validate()
    """

    enabled: bool = False
    split: str = "test"
    features: str = "codes"
    scaling: str = "none"
    reducer: str = "umap"
    n_components: int = 10
    n_neighbors: int = 20
    min_dist: float = 0.0
    clusterer: str = "gmm"
    clusterer_options: dict[str, Any] = field(default_factory=dict)
    covariance_type: str = "full"
    n_clusters: int | str | None = None  # None: the number of classes (labels are only counted), else 10
    criterion: str = "silhouette"
    k_range: list[int] = field(default_factory=lambda: [2, 15])
    max_points: int | None = None
    checkpoint_curve: bool = False
    random_state: int | None = None

    def validate(self) -> None:
        """Check the options (types are checked by pydantic when the section is built)."""
        if not (self.enabled or self.checkpoint_curve):
            return  # the options are checked when clustering is switched on (this keeps scikit-learn unloaded)
        check_choice("cluster.split", self.split, SPLITS)
        check_choice("cluster.features", self.features, FEATURES)
        if self.max_points is not None:
            check_int("cluster.max_points", self.max_points, minimum=2)
        if self.random_state is not None:
            check_int("cluster.random_state", self.random_state, minimum=0)
        if self.checkpoint_curve and self.n_clusters == "auto":
            raise ConfigError("cluster.checkpoint_curve needs a fixed cluster.n_clusters (accuracy is compared "
                              "across checkpoints)", fix="set cluster.n_clusters to the number of classes, e.g. 10")
        try:
            options = self.estimator_options()
            if options["n_clusters"] is None:  # resolved from the labels when the data is loaded
                options["n_clusters"] = DEFAULT_N_CLUSTERS
            EmbeddingClusterer(**options).check_params()
        except ConfigError as exc:  # name the config key
            raise ConfigError(f"cluster.{exc.problem}",
                              fix=re.sub(r"\bset (\w+)", r"set cluster.\1", exc.fix or "")) from None

    def check_run(self, cfg: "RunConfig") -> None:
        """Rules involving other sections: the checkpoint curve needs numbered checkpoints.

        Refused rather than switched on silently: how many checkpoints to keep (and the disk
        they take) is the user's choice.
        """
        if self.checkpoint_curve and cfg.train.checkpoint_every is None:
            raise ConfigError("cluster.checkpoint_curve=true plots the epoch_NNNN checkpoints, but "
                              "train.checkpoint_every is unset (only best and last are kept)",
                              fix="set train.checkpoint_every=1 (or every N epochs), or cluster.checkpoint_curve=false")

    def start_notice(self, cfg: "RunConfig") -> str | None:
        """The line logged when training starts if the clustering does not use the trained model.

        Example:
            >>> ClusterConfig(enabled=True, features="scattering").start_notice(None)[:37]
            'cluster.features=scattering: the clus'
        """
        if not self.enabled or self.features not in MODEL_FREE_FEATURES:
            return None
        return (f"cluster.features={self.features}: the clustering after training uses {FEATURE_NAMES[self.features]}, "
                "not the model, so the model's training does not change the clustering results (the model is still "
                "trained and evaluated for reconstruction); set cluster.features=codes (or codes+hog) to cluster "
                "the model's codes")

    def estimator_options(self) -> dict[str, Any]:
        """The keyword arguments of :class:`~reprlab.capabilities.clustering.EmbeddingClusterer` (without ``random_state``)."""
        return {"scaling": self.scaling, "reducer": self.reducer, "n_components": self.n_components,
                "n_neighbors": self.n_neighbors, "min_dist": self.min_dist, "clusterer": self.clusterer,
                "covariance_type": self.covariance_type, "n_clusters": self.n_clusters, "criterion": self.criterion,
                "k_range": tuple(self.k_range) if isinstance(self.k_range, (list, tuple)) else self.k_range,
                "clusterer_options": self.clusterer_options}


