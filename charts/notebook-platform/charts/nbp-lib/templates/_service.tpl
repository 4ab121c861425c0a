{{/*
nbp-lib.service renders one API service of the platform. Every service has the same shape: a FastAPI
process `nbp-<name> serve` on port 8000 whose schema is migrated first (`nbp-<name> migrate`, an
initContainer), readiness on GET /ready, liveness on GET /health, metrics on GET /metrics.

Arguments (a dict):
  root            the calling chart's top-level context
  name            service name: registry | executor | history
  image           image reference
  values          the service's values (replicas, resources, podAnnotations, nodeSelector, tolerations)
  probes          {readiness: {...}, liveness: {...}} timings
  env             list of EnvVar for the init and main containers
  labels          common labels
  podLabels       extra pod labels (access labels other policies select on)
  podSecurity     {uid, gid}: the user and group the processes run as
  secretFiles     {path, sources}: projected Secret sources mounted read-only (mode 0400) at `path` in
                  the init and main containers
  serviceAccountToken  true: the pod mounts its ServiceAccount's token (it calls the Kubernetes API)
  extraInitContainers, extraVolumes, extraVolumeMounts   lists
  networkPolicy   {enabled, ingress: [rules], egress: [rules]}
  kubeScoreIgnore list of kube-score check ids this service is exempt from (each justified by the caller)
  test            {enabled, resources, labels}: the `helm test` pod calling GET /ready
*/}}
{{- define "nbp-lib.service" -}}
{{- $root := .root -}}
{{- $fullname := printf "%s-%s" $root.Release.Name .name -}}
{{- $selector := dict "app.kubernetes.io/name" .name "app.kubernetes.io/instance" $root.Release.Name -}}
{{- $labels := merge (dict "app.kubernetes.io/component" "api") $selector .labels -}}
{{- $uid := .podSecurity.uid -}}
{{- $gid := .podSecurity.gid -}}
{{- $containerSecurity := include "nbp-lib.containerSecurityContext" .podSecurity | fromYaml -}}
{{- $testSecurity := include "nbp-lib.containerSecurityContext" (dict "uid" 10001 "gid" 10001) | fromYaml -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ $fullname }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- toYaml $labels | nindent 4 }}
automountServiceAccountToken: false
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $fullname }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- toYaml $labels | nindent 4 }}
  {{- $ignore := .kubeScoreIgnore | default list }}
  {{- if lt (int .values.replicas) 2 }}
  {{- /* A single replica is the operator's choice in values (kind, development): then there is nothing
         to spread or to keep available during a disruption, and kube-score's HA checks do not apply. */}}
  {{- $ignore = concat $ignore (list "deployment-replicas" "deployment-has-poddisruptionbudget" "deployment-has-host-podantiaffinity") }}
  {{- end }}
  {{- $ignore = concat $ignore (include "nbp-lib.pullPolicyIgnore" $root | fromYamlArray) }}
  {{- with $ignore }}
  annotations:
    kube-score/ignore: {{ join "," . | quote }}
  {{- end }}
spec:
  replicas: {{ .values.replicas }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- toYaml $selector | nindent 6 }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  template:
    metadata:
      labels:
        {{- toYaml (merge (dict) $labels .podLabels) | nindent 8 }}
      annotations:
        # GET /metrics (Prometheus format) on the service port
        prometheus.io/scrape: "true"
        prometheus.io/port: "8000"
        prometheus.io/path: /metrics
        {{- with .values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ $fullname }}
      automountServiceAccountToken: {{ .serviceAccountToken | default false }}
      enableServiceLinks: false
      securityContext:
        runAsNonRoot: true
        runAsUser: {{ $uid }}
        runAsGroup: {{ $gid }}
        fsGroup: {{ $gid }}
        fsGroupChangePolicy: OnRootMismatch
        seccompProfile:
          type: RuntimeDefault
      {{- with $root.Values.image.pullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- if gt (int .values.replicas) 1 }}
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
            - weight: 100
              podAffinityTerm:
                topologyKey: kubernetes.io/hostname
                labelSelector:
                  matchLabels:
                    {{- toYaml $selector | nindent 20 }}
      {{- end }}
      {{- with .values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      initContainers:
        # Schema migrations (alembic upgrade head of this service's own schema). As an initContainer
        # it runs before the server on every rollout, and on first install it simply retries until the
        # database the same release creates accepts connections.
        - name: migrate
          image: {{ .image }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command: ["nbp-{{ .name }}", "migrate"]
          env:
            {{- toYaml .env | nindent 12 }}
          securityContext:
            {{- toYaml $containerSecurity | nindent 12 }}
          resources:
            {{- toYaml .values.resources | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- with .secretFiles }}
            - name: secrets
              mountPath: {{ .path }}
              readOnly: true
            {{- end }}
        {{- with .extraInitContainers }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      containers:
        - name: {{ .name }}
          image: {{ .image }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command: ["nbp-{{ .name }}", "serve", "--host", "0.0.0.0", "--port", "8000"]
          ports:
            - name: http
              containerPort: 8000
              protocol: TCP
          env:
            {{- toYaml .env | nindent 12 }}
          readinessProbe:
            httpGet:
              path: /ready
              port: http
            {{- toYaml .probes.readiness | nindent 12 }}
          livenessProbe:
            httpGet:
              path: /health
              port: http
            {{- toYaml .probes.liveness | nindent 12 }}
          securityContext:
            {{- toYaml $containerSecurity | nindent 12 }}
          resources:
            {{- toYaml .values.resources | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- with .secretFiles }}
            - name: secrets
              mountPath: {{ .path }}
              readOnly: true
            {{- end }}
            {{- with .extraVolumeMounts }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: 256Mi
        {{- with .secretFiles }}
        - name: secrets
          projected:
            defaultMode: 0400
            sources:
              {{- toYaml .sources | nindent 14 }}
        {{- end }}
        {{- with .extraVolumes }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $fullname }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- toYaml $labels | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- toYaml $selector | nindent 4 }}
  ports:
    - name: http
      port: 8000
      targetPort: http
      protocol: TCP
{{- if gt (int .values.replicas) 1 }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ $fullname }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- toYaml $labels | nindent 4 }}
spec:
  maxUnavailable: 1
  selector:
    matchLabels:
      {{- toYaml $selector | nindent 6 }}
{{- end }}
{{- if .networkPolicy.enabled }}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ $fullname }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- toYaml $labels | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- toYaml $selector | nindent 6 }}
  policyTypes: [Ingress, Egress]
  ingress:
    {{- toYaml .networkPolicy.ingress | nindent 4 }}
  egress:
    {{- toYaml .networkPolicy.egress | nindent 4 }}
{{- end }}
{{- if .test.enabled }}
---
apiVersion: v1
kind: Pod
metadata:
  name: {{ $fullname }}-test-ready
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- toYaml (merge (dict "app.kubernetes.io/component" "test") .test.labels) | nindent 4 }}
  annotations:
    helm.sh/hook: test
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
    {{- with include "nbp-lib.pullPolicyIgnore" $root | fromYamlArray }}
    kube-score/ignore: {{ join "," . | quote }}
    {{- end }}
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  enableServiceLinks: false
  securityContext:
    runAsNonRoot: true
    runAsUser: 10001
    runAsGroup: 10001
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: ready
      image: {{ .image }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      command:
        - python
        - -c
        - |
          import sys, urllib.request
          url = "http://{{ $fullname }}.{{ $root.Release.Namespace }}.svc:8000/ready"
          with urllib.request.urlopen(url, timeout=10) as response:
              print(url, response.status)
              sys.exit(0 if response.status == 200 else 1)
      securityContext:
        {{- toYaml $testSecurity | nindent 8 }}
      resources:
        {{- toYaml .test.resources | nindent 8 }}
{{- end }}
{{- end -}}

{{- define "nbp-lib.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .gid }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
kube-score wants imagePullPolicy Always (pull credentials re-checked on every start), the default here.
When values choose another policy - kind, where `make kind-load` puts the images on the node and nothing
can be pulled - that check is the operator's explicit decision and is exempted.
*/}}
{{- define "nbp-lib.pullPolicyIgnore" -}}
{{- if ne .Values.image.pullPolicy "Always" -}}
{{- toYaml (list "container-image-pull-policy") -}}
{{- else -}}
[]
{{- end -}}
{{- end -}}
