{{/* Names and labels shared by every template of the chart. */}}

{{- define "jobchain.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The prefix of every resource name: <release>-<chart>, or the release name alone when it holds the chart name. */}}
{{- define "jobchain.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "jobchain.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Standard labels; call with (dict "ctx" $ "component" "operator"). */}}
{{- define "jobchain.labels" -}}
helm.sh/chart: {{ include "jobchain.chart" .ctx }}
{{ include "jobchain.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: jobchain
{{- end -}}

{{/* The labels a selector matches on; call with (dict "ctx" $ "component" "operator"). */}}
{{- define "jobchain.selectorLabels" -}}
app.kubernetes.io/name: {{ include "jobchain.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "jobchain.operatorName" -}}
{{- printf "%s-operator" (include "jobchain.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "jobchain.natsName" -}}
{{- printf "%s-nats" (include "jobchain.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "jobchain.natsHeadless" -}}
{{- printf "%s-headless" (include "jobchain.natsName" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "jobchain.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The NATS URL of the operator and of runners: nats.url, else the in-chart client Service's cluster DNS name
(fully qualified: runner pods in other namespaces use it too). */}}
{{- define "jobchain.natsUrl" -}}
{{- if .Values.nats.url -}}
{{- .Values.nats.url -}}
{{- else if .Values.nats.install.enabled -}}
{{- printf "nats://%s.%s.svc.cluster.local:4222" (include "jobchain.natsName" .) .Release.Namespace -}}
{{- else -}}
{{- fail "nats.url is required when nats.install.enabled is false: set it to the URL of an existing NATS JetStream server, e.g. --set nats.url=nats://nats.nats.svc.cluster.local:4222" -}}
{{- end -}}
{{- end -}}

{{/* A soft anti-affinity spreading one component's pods over nodes; call with (dict "ctx" $ "component" "x"). */}}
{{- define "jobchain.softAntiAffinity" -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "jobchain.selectorLabels" . | nindent 12 }}
{{- end -}}

{{/* The restricted container securityContext (PodSecurity "restricted"). */}}
{{- define "jobchain.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 1000
runAsGroup: 1000
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}
