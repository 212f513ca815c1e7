"""Process runtime: plan the ports, render the configs, run the stack under supervisord.

Modules are imported by name (plan, render, stack) rather than re-exported here: importing the
package must stay cheap for the supervisord event listeners (watchdog, restarts).
"""
