"""Wire protocols besides our own: MLflow's scoring server and Open Inference Protocol v2."""
