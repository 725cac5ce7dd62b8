"""The accelerator check: ``prepare_device`` (wheels and data to carry), ``device_check`` (and its
``.sh`` wrapper) running ``device_parts``, and ``device_report`` writing the results."""
