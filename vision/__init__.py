"""Camera pipelines: sources, stages, detectors, calibration (image → world), evidence, incident sink, CLI.

The first detector finds objects thrown from high floors (高空抛物)::

    sources.py      video files and RTSP/HTTP streams, frames with timestamps, bounded queues
    config.py       validated detector and camera settings (unknown keys refused)
    calibration.py  homographies image ↔ façade metres ↔ lon/lat, floors and window columns
    stages.py       stabilisation, foreground blobs at full resolution, multi-object tracking
    physics.py      the gravity gate in façade metres
    classifier.py   a small MLP over track features: the model, the features, loading its weights
    training.py     training the MLP, reproducibly from a seed; trained on first use when missing
    simulation.py   simulated façade trajectories of every class, for training
    falling.py      the detector: stages wired together, start/update/end lifecycle, release point
    evidence.py     ring buffer, clips, keyframes, SHA-256 chained records, verification
    sink.py         incidents through gis.incidents.services, all or nothing
    pipeline.py     analyze_video
    cli.py          onemap vision analyze | train | verify

Heavy libraries (OpenCV, PyTorch, Django) are imported inside functions.
"""
