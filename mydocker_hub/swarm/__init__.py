"""The Docker Swarm layer: pure spec builders, naming, port allocation, an async client and one shared watcher."""
