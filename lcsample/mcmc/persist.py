"""A run with ``store=``: its store opened (or resumed) before the work, saved as it goes.

The order of a stored run:

1. :func:`open_stored_run`, before any work: an existing store is refused unless
   ``resume=True`` (and checked to be this run's) or ``overwrite``;
2. the chains are built — from the store's last committed states when resuming a run
   whose warmup had ended (:meth:`StoredRun.resumed_chains`), otherwise as usual, after
   which the store is created (:meth:`StoredRun.create`, now that the seed is known);
3. at the warmup's end, the tuned parameters and the chains' states are saved
   (:meth:`StoredRun.save_warmup`); a run killed before that point starts again;
4. the sampling writes block by block (:class:`~lcsample.mcmc.records.StoreRecords`).
"""

import os

import numpy as np

from ..storage.reader import lazy_records
from ..storage.zarr_store import RunStore, exists_error
from .chain import Chain
from .picard import PendingSteps
from .records import StoreRecords
from .warmup.loop import allocate_records
from .warmup.mass import InverseMass

__all__ = ["StoredRun", "open_stored_run", "run_identity"]

# The options a stored run must share with its resume (besides the target's variables).
_SAME = ("chains", "draws", "thin", "tune", "method", "step_size", "friction", "adapt_mass",
         "tuning", "target_accuracy", "init", "corrector_steps", "corrector_step_size",
         "picard_steps", "tolerance", "max_rounds", "discard_tuned_samples")


def run_identity(target, opts, seed_attr=None):
    """What makes a stored run this run: options, the target's variables, seed, dtype."""
    identity = {name: getattr(opts, name) for name in _SAME}
    identity.update(
        dim=target.dim, dtype=opts.store.dtype,
        variables=[[v.name, list(v.shape)] for v in target.structure.variables],
        initial_positions=None if opts.initial_positions is None
        else np.asarray(opts.initial_positions).tolist(),
        seed=None if seed_attr is None else str(seed_attr))
    if opts.seed is not None and seed_attr is None:
        seed = opts.seed
        identity["seed"] = str(seed.entropy if isinstance(seed, np.random.SeedSequence)
                               else seed)
    return identity


def open_stored_run(target, opts):
    """The :class:`StoredRun` of ``opts.store`` (None without one), checked before any work.

    Raises
    ------
    ValueError
        The store exists and neither ``resume`` nor ``overwrite`` was asked, or it holds
        a different run.
    """
    spec = opts.store
    if spec is None:
        return None
    pending = opts.picard_steps if opts.kind.picard else 0
    if os.path.exists(spec.path) and opts.resume:
        store = RunStore.reopen(spec, run_identity(target, opts), target.structure, pending)
        loaded = store.load()
        if loaded is not None:
            return StoredRun(spec, opts.store_chunk, pending, store, loaded)
        spec = spec._replace(overwrite=True)  # killed before its warmup ended: start again
    elif os.path.exists(spec.path) and not spec.overwrite:
        raise exists_error(spec.path)
    return StoredRun(spec, opts.store_chunk, pending)


class StoredRun:
    """A run's store and, when resuming, what it held (see the module's docstring)."""

    def __init__(self, spec, chunk, max_pending, store=None, loaded=None):
        self.spec, self.chunk, self.max_pending = spec, chunk, max_pending
        self.store, self.loaded = store, loaded

    @property
    def resumed(self):
        """Whether the chains continue from the store (its warmup had ended)."""
        return self.loaded is not None

    def create(self, target, opts, seed_attr):
        """Create the store of a fresh run, once its seed is known."""
        self.store = RunStore.create(self.spec, run_identity(target, opts, seed_attr),
                                     target.structure, opts.chains, opts.draws, self.chunk,
                                     self.max_pending)

    def saved_info(self):
        """(seed attr, init info, tuning history, corrector) saved at the warmup's end."""
        info = self.loaded["info"]
        corrector = info["corrector"]
        return (info["seed"], dict(info["init"]), [dict(e) for e in info["history"]],
                None if corrector is None else (int(corrector[0]), float(corrector[1])))

    def resumed_chains(self, target, code):
        """The chains at their last committed states, with their tuned parameters."""
        loaded = self.loaded
        masses = [InverseMass(m) for m in loaded["inverse_mass_matrix"]]
        corrector = self.saved_info()[3]
        chain_list = []
        for c, state in enumerate(loaded["states"]):
            rng = np.random.Generator(np.random.PCG64())
            rng.bit_generator.state = state["rng_state"]
            chain = Chain(target, code, rng, state["x"], state["v"], state["g"], state["lp"],
                          float(loaded["step_size"][c]), float(loaded["friction"][c]),
                          masses[int(loaded["mass_index"][c])], corrector)
            for name in ("n_grads", "n_rounds", "picard_blocks", "picard_unconverged"):
                setattr(chain, name, state[name])
            chain.pending = None if state["pending"] is None else PendingSteps(*state["pending"])
            chain.forget_evaluation_point()
            chain_list.append(chain)
        return chain_list

    def save_warmup(self, chain_list, seed_attr, init_info, history, warm, warm_length):
        """Save the warmup's outcome: from here on a killed run resumes, not restarts.

        ``warm``: the warmup records when kept (``discard_tuned_samples=False``), else None;
        ``warm_length``: its steps per chain.
        """
        info = {"seed": seed_attr, "init": init_info, "history": history,
                "corrector": chain_list[0].corrector, "tune": warm_length,
                "thin": chain_list[0].thin}
        self.store.save_warmup(info, chain_list, warm)

    def warmup_records(self):
        """The saved warmup's records: read lazily when kept, else empty of its length."""
        if "warmup_sample_stats" not in self.store.root:
            return allocate_records(len(self.loaded["states"]), self.loaded["info"]["tune"],
                                    self.store.dim, keep_draws=False)
        return lazy_records(self.store, prefix="warmup_")

    def records(self):
        """The sampling records, each chain starting after its committed draws."""
        start = ([s["draws_done"] for s in self.loaded["states"]] if self.resumed
                 else [0] * self.store.root["sample_stats"]["lp"].shape[0])
        return StoreRecords(self.store, start)
