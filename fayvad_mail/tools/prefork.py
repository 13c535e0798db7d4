"""Odoo's prefork server, tuned for the API (no ORM)."""

LISTEN_BACKLOG = 128  # connections the kernel queues for Odoo's workers (capped by net.core.somaxconn)


def raise_listen_backlog():
    """Odoo's prefork server listens with a backlog of 8 connections per
    worker: a burst of deliveries beyond it (billing systems send them in
    bursts) is reset by the kernel before any worker sees it. A larger
    backlog queues them until a worker is free."""
    from odoo.service import server as odoo_server

    running = odoo_server.server
    sock = getattr(running, "socket", None)
    if isinstance(running, odoo_server.PreforkServer) and sock is not None:
        try:
            sock.listen(max(LISTEN_BACKLOG, 8 * running.population))
        except OSError:  # closed meanwhile
            return
