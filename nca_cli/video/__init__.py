"""Seeing in the dark: reconstructing video from a few surviving pixels with an NCA, and baselines.

clips        Clip: frames read from mp4/webm/gif, fitted to a size, grey or colour; writing clips
demo_clips   demo clips made locally: a camera loop over a scikit-image photograph, the lizard
masks        which pixels survive: fresh random masks per frame, or one fixed sensor pattern
model        the cell state's layout (estimate, input register, flag, hidden) on the engine's NCA
train        VideoTrainConfig and VideoTrainer: self-supervised truncated BPTT on random crops
checkpoint   the resume state of a training run
finish       ending a run: the interpolation chosen on the training clip, scores, the model file
baselines    last-seen pixel and normalised Gaussian interpolation, and choosing the latter's sigmas
scores       PSNR and SSIM per frame and over a clip
reconstruct  every method over a clip, scored, and the side-by-side video
plot         PSNR over time of every method
"""
