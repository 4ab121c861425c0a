{{/*
Names. Everything the chart creates is named `<release>-<part>`; the release name is kept short enough
for every derived name to stay a valid DNS label (Service names are limited to 63 characters).
*/}}
{{- define "nbp.prefix" -}}
{{- if gt (len .Release.Name) 30 -}}
{{- fail (printf "release name %q is longer than 30 characters; derived resource names would not fit" .Release.Name) -}}
{{- end -}}
{{- .Release.Name -}}
{{- end -}}

{{- define "nbp.name" -}}
{{- printf "%s-%s" (include "nbp.prefix" .root) .part -}}
{{- end -}}

{{- define "nbp.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/part-of: notebook-platform
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{/* Scheme and public URLs, all from global.domain and global.tls. */}}
{{- define "nbp.scheme" -}}
{{- if .Values.global.tls.enabled }}https{{ else }}http{{ end -}}
{{- end -}}

{{- define "nbp.publicUrl" -}}
{{- printf "%s://%s" (include "nbp.scheme" .) .Values.global.domain -}}
{{- end -}}

{{- define "nbp.supersetHost" -}}
{{- printf "superset.%s" .Values.global.domain -}}
{{- end -}}

{{- define "nbp.supersetUrl" -}}
{{- printf "%s://%s" (include "nbp.scheme" .) (include "nbp.supersetHost" .) -}}
{{- end -}}

{{/* In-cluster base URL of a Service: http://<name>.<namespace>.svc.<clusterDomain>:<port> */}}
{{- define "nbp.serviceUrl" -}}
{{- printf "http://%s.%s.svc.%s:%v" .name .root.Release.Namespace .root.Values.clusterDomain .port -}}
{{- end -}}

{{/*
Names of the third-party subcharts' objects, following each chart's own fullname rule (release name,
plus the chart name unless the release name already contains it; fullnameOverride wins).
*/}}
{{- define "nbp.subchartFullname" -}}
{{- $values := index .root.Values .chart | default dict -}}
{{- if $values.fullnameOverride -}}
{{- $values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := $values.nameOverride | default .chart -}}
{{- if contains $name .root.Release.Name -}}
{{- .root.Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .root.Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "nbp.keycloak.service" -}}
{{- printf "%s-http" (include "nbp.subchartFullname" (dict "root" . "chart" "keycloakx")) -}}
{{- end -}}

{{- define "nbp.superset.service" -}}
{{- printf "%s-superset" .Release.Name -}}
{{- end -}}

{{/* z2jh keeps its default, unprefixed names (fullnameOverride ""): one JupyterHub per namespace. */}}
{{- define "nbp.jupyterhub.service" -}}
{{- $fullname := .Values.jupyterhub.fullnameOverride | default "" -}}
{{- if $fullname }}{{ printf "%s-proxy-public" $fullname }}{{ else }}proxy-public{{ end -}}
{{- end -}}

{{/* z2jh's hub ServiceAccount, named by its chart's rule (hub.serviceAccount.name, else <fullname>-hub). */}}
{{- define "nbp.jupyterhub.hubServiceAccount" -}}
{{- $fullname := .Values.jupyterhub.fullnameOverride | default "" -}}
{{- $named := dig "hub" "serviceAccount" "name" "" (.Values.jupyterhub | toYaml | fromYaml) -}}
{{- $named | default (ternary (printf "%s-hub" $fullname) "hub" (ne $fullname "")) -}}
{{- end -}}

{{/* OIDC: the public issuer (what tokens carry in `iss`) and in-cluster endpoints for pods. */}}
{{- define "nbp.oidc.issuer" -}}
{{- .Values.oidc.issuer | default (printf "%s/auth/realms/%s" (include "nbp.publicUrl" .) .Values.oidc.realm) -}}
{{- end -}}

{{- define "nbp.oidc.internalRealmUrl" -}}
{{- printf "%s/auth/realms/%s" (include "nbp.serviceUrl" (dict "root" . "name" (include "nbp.keycloak.service" .) "port" 80)) .Values.oidc.realm -}}
{{- end -}}

{{- define "nbp.oidc.jwksUrl" -}}
{{- .Values.oidc.jwksUrl | default (printf "%s/protocol/openid-connect/certs" (include "nbp.oidc.internalRealmUrl" .)) -}}
{{- end -}}

{{- define "nbp.oidc.tokenUrl" -}}
{{- .Values.oidc.tokenUrl | default (printf "%s/protocol/openid-connect/token" (include "nbp.oidc.internalRealmUrl" .)) -}}
{{- end -}}

{{/* Database: the CNPG cluster, its read-write Service, and the per-role credentials. */}}
{{- define "nbp.db.cluster" -}}
{{- include "nbp.name" (dict "root" . "part" "db") -}}
{{- end -}}

{{/*
The credentials, one table: key in global.existingSecrets -> (Secret name suffix, kind, PostgreSQL role).
Roles own the schema of the same name (registry, executor, history) or a database (superset, keycloak);
superset_ro only reads the history schema, as a member of `history_reader` (database.yaml), the role the
history's migration grants SELECT on its tables.
*/}}
{{- define "nbp.credentials" -}}
dbRegistry: {suffix: db-registry, role: nbp_registry, type: db}
dbExecutor: {suffix: db-executor, role: nbp_executor, type: db}
dbHistory: {suffix: db-history, role: nbp_history, type: db}
dbSupersetRo: {suffix: db-superset-ro, role: superset_ro, type: db, inRoles: [history_reader]}
dbSuperset: {suffix: db-superset, role: superset, type: db}
dbKeycloak: {suffix: db-keycloak, role: keycloak, type: db}
keycloakAdmin: {suffix: keycloak-admin, type: login}
# JupyterHub's chart reads this Secret by a literal name (its values are not templated), so its name
# does not carry the release: one platform per namespace, as JupyterHub's own fixed names imply.
oidcClients: {fixedName: nbp-oidc-clients, type: oidc}
supersetSecretKey: {suffix: superset-secret-key, type: key}
{{- end -}}

{{/* Name of the Secret holding credential .key: the existing one, or the chart's. */}}
{{- define "nbp.secretName" -}}
{{- $cred := index (include "nbp.credentials" .root | fromYaml) .key -}}
{{- $default := $cred.fixedName | default (include "nbp.name" (dict "root" .root "part" ($cred.suffix | default ""))) -}}
{{- index .root.Values.global.existingSecrets .key | default $default -}}
{{- end -}}

{{/*
A generated secret value that survives upgrades: reuse the value already stored in the Secret (looked up
in the cluster) and only generate one when there is none yet. `helm template` has no cluster, so it
always generates; `helm install/upgrade` keeps what is there.
*/}}
{{- define "nbp.generatedValue" -}}
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace .name -}}
{{- if and $existing $existing.data (hasKey $existing.data .field) -}}
{{- index $existing.data .field | b64dec -}}
{{- else -}}
{{- randAlphaNum (.length | default 32) -}}
{{- end -}}
{{- end -}}

{{/* Images of our services. */}}
{{- define "nbp.image" -}}
{{- $repo := .root.Values.image.repository -}}
{{- if .root.Values.image.registry }}{{ $repo = printf "%s/%s" .root.Values.image.registry $repo }}{{ end -}}
{{- printf "%s/%s:%s" $repo .service (.root.Values.image.tag | default .root.Chart.AppVersion) -}}
{{- end -}}

{{/* The users' image (the Dockerfile's `notebook` target): the run pods run in it, and JupyterHub's
single-user servers must too (templates/validate.yaml), so a notebook runs where it was written. */}}
{{- define "nbp.notebookImage" -}}
{{- .Values.executor.runPods.image | default (include "nbp.image" (dict "root" . "service" "notebook")) -}}
{{- end -}}

{{/* Selectors of pods other components pick by label. */}}
{{- define "nbp.keycloak.podSelector" -}}
app.kubernetes.io/name: {{ .Values.keycloakx.nameOverride | default "keycloakx" }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "nbp.db.podSelector" -}}
cnpg.io/cluster: {{ include "nbp.db.cluster" . }}
{{- end -}}

{{/* The executor's run pods: the kubernetes runner (services/executor) labels each pod it creates so. */}}
{{- define "nbp.notebookRun.podSelector" -}}
app.kubernetes.io/component: notebook-run
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "nbp.dnsEgress" -}}
- ports:
    - {protocol: UDP, port: 53}
    - {protocol: TCP, port: 53}
{{- end -}}

{{- define "nbp.ingressControllerPeer" -}}
- namespaceSelector:
    {{- toYaml .Values.networkPolicy.ingressController.namespaceSelector | nindent 4 }}
  podSelector:
    {{- toYaml .Values.networkPolicy.ingressController.podSelector | nindent 4 }}
{{- end -}}

{{/* Notebooks' way to the platform's public address (NBP_URL, the ingress) when that address is inside the
cluster's network: one egress rule, in the run pods' policy and in the single-user servers' extra one. */}}
{{- define "nbp.platformAddressEgress" -}}
{{- $egress := .Values.networkPolicy.platformAddressEgress -}}
- to:
    {{- include "nbp.ingressControllerPeer" . | nindent 4 }}
    {{- with $egress.extraPeers }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  ports:
    {{- range $egress.ports }}
    - {protocol: TCP, port: {{ . }}}
    {{- end }}
{{- end -}}

{{/* Also read by JupyterHub by its literal name: not release-prefixed (see oidcClients above). */}}
{{- define "nbp.workspace.claim" -}}
{{- .Values.workspace.existingClaim | default "nbp-workspace" -}}
{{- end -}}

{{/* The credentials in use with the enabled components. */}}
{{- define "nbp.credentials.enabled" -}}
{{- $keys := list "dbRegistry" "dbExecutor" "dbHistory" "oidcClients" -}}
{{- if .Values.superset.enabled }}{{ $keys = concat $keys (list "dbSupersetRo" "dbSuperset" "supersetSecretKey") }}{{ end -}}
{{- if .Values.keycloakx.enabled }}{{ $keys = concat $keys (list "dbKeycloak" "keycloakAdmin") }}{{ end -}}
{{- toYaml $keys -}}
{{- end -}}
