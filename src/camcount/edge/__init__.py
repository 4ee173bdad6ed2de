"""The edge counting worker: video in, line-crossing counts out, delivered exactly once.

Stages, one module each, connected by :mod:`camcount.edge.pipeline`::

    capture -> detectors -> track -> count -> aggregate -> spool -> deliver

The worker talks to the camcount HTTP API only, never to the database. It needs the
``edge`` extra (OpenCV, NumPy, SciPy, onnxruntime, httpx); nothing here is imported by
the server.
"""
