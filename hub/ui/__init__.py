"""The hub's web UI: plain ES modules and CSS under ``static/``, served by the hub at ``/``.

No build step and nothing fetched at run time: the browser loads the files as
they are in this package (they ship in the wheel) and speaks only to the REST
API under ``/api/v1`` and its live event stream.
"""
