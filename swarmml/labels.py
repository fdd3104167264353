"""Every label swarmml reads or writes, defined once.

docker/cli's stack labels, written as docker stack deploy writes them, so that
`docker stack ls/ps/rm` see swarmml's stacks and swarmml sees the CLI's:
"""
STACK_NAMESPACE = "com.docker.stack.namespace"
STACK_IMAGE = "com.docker.stack.image"  # the image as the stack file wrote it, before digest pinning

# Everything a local swarmml cluster creates, so that `cluster down` removes exactly that.
CLUSTER = "io.swarmml.cluster"
ROLE = "io.swarmml.role"

# Images swarmml builds: which one, and the models a predictor image serves.
IMAGE = "io.swarmml.image"
MODELS = "io.swarmml.models"
