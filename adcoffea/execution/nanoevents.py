"""A chunk's NanoEvents at a cost set by what the processor reads, not by the tree's size.

Building NanoEvents costs in proportion to the tree's branches: coffea lists every branch's
C++ type name and builds a virtual form for every branch, on every chunk. A CMS NanoAOD v15
tree has 2656 branches: about 100 ms per chunk, ten times the read of a dijet processor's
branches (``benchmarks/throughput.py``). Two things bring it to 4-5 ms:

* a processor that names the collections it reads (``collections()`` of the adcoffea
  processors) gets events holding only those (:class:`BranchFilter`, passed to coffea as
  ``iteritems_options``); any other processor gets the whole tree, as before;
* the tree of a file kept open (:func:`adcoffea.execution.work.open_tree`) answers coffea's
  per-chunk metadata questions (every branch's type name, the filtered branch list) from a
  per-tree memo (:func:`memoise_tree_metadata`): they depend on the file only.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BranchFilter:
    """Keeps the branches of the named NanoAOD collections and top-level branches.

    A branch belongs to the collection before the first ``_`` of its name (``FatJet_pt``:
    ``FatJet``); a collection's counter (``nFatJet``) comes with it. Used as coffea's
    ``iteritems_options={"filter_branch": ...}``, so that NanoEvents build the form of
    these branches only. Frozen and hashable: it is a key of the per-tree memo, and it is
    pickled to the workers with the run.

    Example:
        >>> keep = BranchFilter.of(["FatJet", "event"])
        >>> [keep.keeps(n) for n in ("FatJet_pt", "nFatJet", "event", "Jet_pt", "nJet")]
        [True, True, True, False, False]
    """

    names: frozenset[str]

    @classmethod
    def of(cls, names: Iterable[str]) -> BranchFilter:
        return cls(frozenset(names))

    def keeps(self, branch_name: str) -> bool:
        head = branch_name.split("_", 1)[0]
        return head in self.names or (head[:1] == "n" and head[1:] in self.names)

    def __call__(self, branch: Any) -> bool:
        return self.keeps(branch.name)


def collection_of(branch_name: str) -> str:
    """The NanoAOD collection (or top-level branch) a branch belongs to.

    Example:
        >>> collection_of("FatJetPFCand_jetIdx"), collection_of("genWeight")
        ('FatJetPFCand', 'genWeight')
    """
    return branch_name.split("_", 1)[0]


#: Argument sets remembered per memoised method: coffea asks with one or two (the whole
#: tree, the processor's filter); a caller passing fresh filter objects every time is
#: answered the slow way once this many are kept, so the memo cannot grow without bound.
MEMO_ENTRIES = 8


def _memo(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` with its results kept per arguments (generators kept as lists)."""
    cache: dict[Any, tuple[bool, Any]] = {}

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            key = (args, tuple(sorted(kwargs.items())))
            hit = cache.get(key)
        except TypeError:  # unhashable arguments (a list of names)
            return method(*args, **kwargs)
        if hit is None:
            if len(cache) >= MEMO_ENTRIES:
                return method(*args, **kwargs)
            out = method(*args, **kwargs)
            generator = inspect.isgenerator(out)
            hit = cache[key] = (generator, list(out) if generator else out)
        generator, value = hit
        if generator:
            return iter(value)
        return dict(value) if isinstance(value, dict) else value

    call.memo = cache  # type: ignore[attr-defined]  # what it holds (for the tests)
    return call


def memoise_tree_metadata(tree: Any) -> None:
    """Answer ``typenames()`` and ``iteritems()`` of ``tree`` from a memo from now on.

    NanoEvents call both on every chunk (every branch's C++ type name; the branches to
    build the form from), and neither changes while the file is open. Set on the tree
    object of a file kept open (uproot's object cache hands the same object to every
    chunk); a tree object read afresh simply answers the slow way again.
    """
    if getattr(tree, "_adcoffea_memo", False):
        return
    tree.typenames = _memo(tree.typenames)
    tree.iteritems = _memo(tree.iteritems)
    tree._adcoffea_memo = True
