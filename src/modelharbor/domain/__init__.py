"""Domain leaf package: entities, errors, principals and permissions. Imports nothing from ModelHarbor."""
