"""Files in and out, each written atomically (a temporary file renamed on success).

atomic      atomic_output, the one way outputs are written
model_file  model files (safetensors + JSON metadata), validated on load; bundled models; int8
distill     the Distill demo's JSON model format, read and written
frames      frame writers for .mp4, .gif, .png and .npy, chosen by suffix
states      raw states from .npy files, to start a run from
plots       small PNG figures: loss curves, previews, sweep plots
"""
