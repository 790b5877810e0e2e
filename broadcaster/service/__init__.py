"""Running as a service: sd_notify, health, metrics, the status view, systemd units."""
