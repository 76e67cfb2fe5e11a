"""Notification templates (templates/carewatch.tmpl): what the Slack, email and PagerDuty
texts say.

Each alert's ``description`` already names the failing step, its reason and its message (see
``alerts.texts``); these templates lay it out with the alert's location, its runbook and
its dashboard, firing alerts first. The webhook receiver gets Alertmanager's JSON, annotations
included, and no template.
"""

from __future__ import annotations

from typing import Final

#: One definition per text; alertmanager.yaml refers to them by name (``alerts.routing``).
TEMPLATES: Final = """\
{{/* carewatch notification templates; see docs/alerts.md#notifications. */}}

{{ define "carewatch.title" -}}
[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ .Alerts.Firing | len }}{{ end }}]
{{- with .CommonLabels.severity }} {{ . }}{{ end }}
{{- with .CommonLabels.channel }} channel {{ . }}:{{ end }}
{{- with index .Alerts 0 }} {{ .Annotations.summary }}{{ end }}
{{- end }}

{{ define "carewatch.dashboard_url" -}}
{{ with index .Alerts 0 }}{{ .Annotations.dashboard_url }}{{ end }}
{{- end }}

{{ define "carewatch.runbook_url" -}}
{{ with index .Alerts 0 }}{{ with .Annotations.runbook_url }}{{ . }}{{ else }}no runbook{{ end }}
{{- end }}{{ end }}

{{ define "carewatch.alert.text" -}}
{{ .Labels.alertname }} ({{ .Labels.severity }}
{{- with .Labels.location }}, at {{ . }}{{ end }}): {{ .Annotations.summary }}
{{ .Annotations.description }}
runbook: {{ with .Annotations.runbook_url }}{{ . }}{{ else }}no runbook{{ end }}
dashboard: {{ .Annotations.dashboard_url }}
{{- end }}

{{ define "carewatch.text" -}}
{{ with .Alerts.Firing }}Firing:
{{ range . }}
{{ template "carewatch.alert.text" . }}
{{ end }}{{ end -}}
{{ with .Alerts.Resolved }}Resolved:
{{ range . }}
{{ template "carewatch.alert.text" . }}
{{ end }}{{ end -}}
{{- end }}

{{ define "carewatch.slack.title" }}{{ template "carewatch.title" . }}{{ end }}

{{ define "carewatch.slack.alert" -}}
*{{ .Labels.alertname }}* ({{ .Labels.severity }}
{{- with .Labels.location }}, at {{ . }}{{ end }}): {{ .Annotations.summary }}
{{ .Annotations.description }}
{{ with .Annotations.runbook_url }}<{{ . }}|runbook>{{ else }}no runbook{{ end }}
{{- " · " }}<{{ .Annotations.dashboard_url }}|dashboard>
{{- end }}

{{ define "carewatch.slack.text" -}}
{{ range .Alerts.Firing }}{{ template "carewatch.slack.alert" . }}
{{ end -}}
{{ with .Alerts.Resolved }}Resolved:
{{ range . }}{{ template "carewatch.slack.alert" . }}
{{ end }}{{ end -}}
{{- end }}

{{ define "carewatch.email.alert" -}}
<h3>{{ .Labels.alertname }} ({{ .Labels.severity }}
{{- with .Labels.location }}, at {{ . }}{{ end }})</h3>
<p><b>{{ .Annotations.summary }}</b></p>
<p>{{ .Annotations.description }}</p>
<p>{{ with .Annotations.runbook_url }}<a href="{{ . }}">runbook</a>{{ else }}no runbook{{ end }}
{{- " · " }}<a href="{{ .Annotations.dashboard_url }}">dashboard</a></p>
{{- end }}

{{ define "carewatch.email.html" -}}
<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{ template "carewatch.title" . }}</title></head><body>
{{ with .Alerts.Firing }}<h2>Firing</h2>
{{ range . }}{{ template "carewatch.email.alert" . }}
{{ end }}{{ end -}}
{{ with .Alerts.Resolved }}<h2>Resolved</h2>
{{ range . }}{{ template "carewatch.email.alert" . }}
{{ end }}{{ end -}}
</body></html>
{{- end }}
"""


def notification_templates() -> str:
    """The text of templates/carewatch.tmpl (the same for every checks.yaml)."""
    return TEMPLATES
