"""Process runtime: plan the ports, render the configs, run the stack under supervisord.

Modules are imported by name (plan, render, stack) rather than re-exported here: gateway.app
imports gateway.runtime.plan, and stack imports the app's registry.
"""
