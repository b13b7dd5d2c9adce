"""Authentication: role mapping and the authenticators of mydocker-hub."""
