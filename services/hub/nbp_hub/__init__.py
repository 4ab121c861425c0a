"""notebook-platform's JupyterHub: Keycloak sign-in (:mod:`nbp_hub.keycloak_login`, the same settings as
the chart's z2jh values), each user's server confined to their workspace folder
(:mod:`nbp_hub.spawner`), and the user's current access token inside it (:mod:`nbp_hub.token`)."""
