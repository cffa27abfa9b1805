"""Bulk import of historical events (``reconcile import FILE``).

``source`` reads and checks a CSV or JSON Lines file and fixes the load order (by
``createdAt``, then line); ``loader`` feeds the events in that order through the same
engine as ``POST /identify`` (:meth:`reconcile.engine.reconciler.Reconciler.identify_many`),
many per transaction, recording its position in the same transactions so that an
interrupted import resumes exactly where it stopped; ``progress`` shows it on a terminal.
"""
