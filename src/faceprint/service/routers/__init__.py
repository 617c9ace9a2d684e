"""The REST endpoints, one :class:`fastapi.APIRouter` per resource; ``create_app`` includes
them in this order (the order of ``/openapi.json`` and of route matching):

* :mod:`.health` -- ``/v1/health``, ``/v1/ready`` (no key);
* :mod:`.subjects` -- ``/v1/subjects`` and one subject: create, read, rename, erase, add faces,
  consistency;
* :mod:`.recognition` -- ``/v1/identify`` (1:N), ``/v1/verify`` (1:1);
* :mod:`.checks` -- ``/v1/liveness``, ``/v1/liveness/video``, ``/v1/synthetic``;
* :mod:`.detection` -- ``/v1/detect``.

Each takes what it works on from :mod:`faceprint.service.deps`."""
