"""Identity reconciliation service: exact linking rules, a Splink model for near misses,
a review queue, a batch path.

The package is layered; each layer imports only the ones below it (see
docs/ARCHITECTURE.md):

* ``cli`` and ``web`` (Flask: :func:`reconcile.web.create_app`) at the top;
* ``training``, ``review`` and ``synth``;
* ``engine`` (the exact rules, the guards, the probabilistic stage, the ``Reconciler``);
* ``scoring`` (the model document and the online scorer);
* ``store`` (every SQL statement and transaction);
* ``normalize``, ``names`` and ``config`` at the ground.

Importing this package, or anything but ``web``, never imports Flask.
"""
