"""Anomaly-detection models: architectures, training, bundles and evaluation.

Modules (torch is imported only inside this package):

* :mod:`~adcoffea.models.nets` — AE, VAE, PFN (Deep Sets), VRNN, classifier, conditional MAF;
* :mod:`~adcoffea.models.preprocessing` — standardisation, constituent coordinates, VRNN
  jet alignment and kT ordering;
* :mod:`~adcoffea.models.train` — :func:`~adcoffea.models.train.train_model` for every method;
* :mod:`~adcoffea.models.weak` — CWoLa hunting and CATHODE with k-fold scoring;
* :mod:`~adcoffea.models.bundle` — :class:`~adcoffea.models.bundle.ModelBundle`, save/load;
* :mod:`~adcoffea.models.evaluate` — ROC/AUC/SIC, sculpting, plots, ``adcoffea evaluate``;
* :mod:`~adcoffea.models.io` — ModelInputs as ``.npz``; :mod:`~adcoffea.models.toy` — samplers.
"""
