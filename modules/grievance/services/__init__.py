"""The grievance use cases, each as ``check_<verb>(actor, …) -> <Verb>Request`` (validates and
authorises once: permission, location scope and sensitivity) and ``do_<verb>(request)`` (writes,
with events and notifications after commit). Mutations, views and jobs call these two only."""
