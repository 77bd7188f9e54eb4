"""Strategy runner service: strategy plug-ins live."""
