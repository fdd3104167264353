"""Building a predictor image from your own models.

- artifacts.py: a model file checked before any build (trust, version, signature, digest);
- context.py: the image's build context (the model service, its wheels, the models);
- predictor.py: build, tag and push the image to the cluster's registry.
"""
