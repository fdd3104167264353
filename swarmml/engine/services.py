"""Engine I/O for Swarm services: list, inspect, create, update and remove them.

The only module that deploy, ops and verify use to change a swarm's services.
Specs go in and come out as the Engine API's JSON, as plain dicts; engine
errors keep their kind (swarmml.engine.errors); transient ones are retried there.
A service's registry login (X-Registry-Auth) is read from the local docker
config (images.py keeps the logins).
"""
import docker.auth

from swarmml.engine import errors
from swarmml.engine.errors import Conflict, OutOfSequence
from swarmml.engine.images import registry_login, registry_of


def services(client, label=None):
    """Every service, or those carrying label (KEY or KEY=VALUE)."""
    return errors.call("listing services", client.api.services, filters={"label": label} if label else None)


def service(client, name_or_id):
    return errors.call(f"service {name_or_id}", client.api.inspect_service, name_or_id)


def registry_auth(client, image):
    """The X-Registry-Auth value for image's registry from the local docker config (None without credentials)."""
    login = registry_login(registry_of(image))
    return docker.auth.encode_header(login).decode() if login else None


def _post_spec(client, path, spec, params=None, auth=None):
    # The spec is posted as it is, like the docker CLI does, rather than through the SDK's
    # create_service/update_service: those add fields of their own and always send the local
    # registry credentials, which the CLI only sends (and stores in the swarm) when asked to.
    api = client.api
    headers = {"X-Registry-Auth": auth} if auth else {}
    resp = api._post_json(api._url(path), data=spec, params=params or {}, headers=headers)
    return api._result(resp, json=True) or {}


def create_service(client, spec, auth=None):
    """Create a service from a ServiceSpec dict; auth: X-Registry-Auth to store with it. Returns (ID, warnings)."""
    # Not retried: a create whose answer was lost may have happened, and a second one would be refused.
    done = errors.call(f"creating service {spec['Name']}", _post_spec, client, "/services/create", spec, auth=auth,
                       retry=())
    return done["ID"], done.get("Warnings") or []


def update_service(client, current, spec, rollback=False, auth=None):
    """Replace a service's spec. current: the service as read (ID, Version, Spec). Returns the engine's warnings.

    Without auth the engine keeps the credentials stored with the service. rollback=True asks
    Swarm for its own rollback to PreviousSpec (what `docker service rollback` sends), so that
    it applies the service's RollbackConfig and reports rollback states.

    A version conflict is retried with the version read again, but only while the service's
    spec is still the one the change was made from: Swarm bumps the version itself when it
    records an update's status, and that must not fail a change; a person's change in between
    must not be overwritten (Conflict).
    """
    what = f"{'rolling back' if rollback else 'updating'} service {spec['Name']}"
    sent = {"version": current["Version"]["Index"] if isinstance(current["Version"], dict) else current["Version"]}

    def attempt():
        params = {"version": sent["version"]}
        if rollback:
            params["rollback"] = "previous"
        try:
            return errors.call(what, _post_spec, client, f"/services/{current['ID']}/update", spec, params=params,
                               auth=auth)
        except OutOfSequence:
            again = service(client, current["ID"])
            if again["Spec"] != current["Spec"]:
                raise Conflict(f"{what}: the service was changed by someone else since it was read; "
                               "nothing was changed (run the command again)") from None
            sent["version"] = again["Version"]["Index"]
            raise

    done = errors.retrying((OutOfSequence,))(attempt)
    return done.get("Warnings") or []


def remove_service(client, service_id):
    errors.call(f"removing service {service_id}", client.api.remove_service, service_id)
