"""Extra hub pages: catalogue, connection page, join links, environment status, and the connection stub."""
