"""Image references the way the Docker client writes them into a service spec.

Before creating or updating a service, the Docker client (moby's
ServiceCreate/ServiceUpdate, which `docker stack deploy` calls) rewrites the
image: it adds the `latest` tag when there is neither tag nor digest, and
writes the short "familiar" form (`docker.io/library/nginx` -> `nginx`).
When it resolves the image in the registry it appends `@<digest>`. swarmml
makes the same rewrites so its specs match docker/cli's field for field, and
so that a redeploy compares like with like (otherwise `nginx` in the file
against `nginx:latest@sha256:...` on the swarm would look like a change).

Pure functions; an invalid reference is returned unchanged (the engine says why).
"""
import re
from dataclasses import dataclass

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_REFERENCE = re.compile(
    rf"^(?P<domain>{_DOMAIN})/(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?$")
_IMAGE_ID = re.compile(r"^[a-f0-9]{64}$")


@dataclass(frozen=True)
class Reference:
    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    def familiar(self):
        """The short form the docker CLI prints: no docker.io/, no library/ for official images."""
        name = f"{self.domain}/{self.path}"
        if self.domain == DEFAULT_DOMAIN:
            name = self.path
            if name.startswith(OFFICIAL_PREFIX) and "/" not in name[len(OFFICIAL_PREFIX):]:
                name = name[len(OFFICIAL_PREFIX):]
        return name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")


def parse(image):
    """Reference of a normalized image name, or None when it is not a valid reference."""
    if not isinstance(image, str) or _IMAGE_ID.match(image):
        return None
    slash = image.find("/")
    first = image[:slash]
    # The first component is a registry only if it looks like a host: a dot, a port, or localhost
    # (an upper-case first component can't be a repository, so it is taken as a host too).
    if slash == -1 or (not any(c in first for c in ".:") and first != "localhost" and first.lower() == first):
        domain, rest = DEFAULT_DOMAIN, image
    else:
        domain, rest = first, image[slash + 1:]
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in rest.split("@")[0].split(":")[0]:
        rest = OFFICIAL_PREFIX + rest
    repository = rest.split(":", 1)[0]
    if repository.lower() != repository:
        return None  # repository names must be lower case
    m = _REFERENCE.match(f"{domain}/{rest}")
    if not m:
        return None
    return Reference(m["domain"], m["path"], m["tag"], m["digest"])


def tagged(image):
    """As the Docker client sends it: familiar form, `latest` added when neither tag nor digest is given."""
    ref = parse(image)
    if ref is None:
        return image
    if ref.tag is None and ref.digest is None:
        ref = Reference(ref.domain, ref.path, "latest")
    return ref.familiar()


def with_digest(image, digest):
    """image pinned to digest (unchanged when it already carries one), in familiar form."""
    ref = parse(image)
    if ref is None or ref.digest:
        return image
    return Reference(ref.domain, ref.path, ref.tag, digest).familiar()


def is_pinned(image):
    ref = parse(image)
    return bool(ref and ref.digest)
