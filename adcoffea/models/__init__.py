"""Anomaly-detection models: architectures, training, bundles and evaluation.

Modules (torch is imported only inside this package, and not by ``methods``):

* :mod:`~adcoffea.models.methods` — the one list of methods and what each needs;
* :mod:`~adcoffea.models.nets` — AE, VAE, PFN (Deep Sets), VRNN, classifier, boosted trees as
  tensors, zuko conditional flows, conditional VAE;
* :mod:`~adcoffea.models.classifiers` — k-fold BDT/MLP ensembles scored out of fold;
* :mod:`~adcoffea.models.density` — CATHODE background models p(x | mjj) and their closure test;
* :mod:`~adcoffea.models.loop` — the shared training loop and bundle assembly;
* :mod:`~adcoffea.models.threads` — torch/OpenMP thread counts (workers x threads <= cores);
* :mod:`~adcoffea.models.preprocessing` — standardisation, constituent coordinates, VRNN
  jet alignment and kT ordering;
* :mod:`~adcoffea.models.train` — :func:`~adcoffea.models.train.train_model` for every method;
* :mod:`~adcoffea.models.weak` — CWoLa hunting and CATHODE with k-fold scoring;
* :mod:`~adcoffea.models.bundle` — :class:`~adcoffea.models.bundle.ModelBundle`, save/load;
* :mod:`~adcoffea.models.evaluate` — ROC/AUC/SIC and sculpting (figures:
  :mod:`adcoffea.plots.scores`; command: ``adcoffea evaluate``);
* :mod:`~adcoffea.models.io` — ModelInputs as ``.npz``; :mod:`~adcoffea.models.toy` — samplers.
"""
