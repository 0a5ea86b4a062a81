"""Console tickets of a deployment's machines."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import Field

from api.responses import Out


class ConsoleTicket(Out):
    deployment_id: UUID
    machine: str
    vm_id: str = Field(description="vCenter's managed object id of the VM")
    html5_url: str = Field(
        description="The page that shows the console in a browser: vCenter's web console "
        "(https://<vcenter>/ui/webconsole.html?vmId=&vmName=&serverGuid=&host=&sessionTicket=&thumbprint=, "
        "signed in by a one-use clone ticket), or Stagekeeper's own page for the simulated vCenter"
    )
    webmks_url: str = Field(description="WebSocket of the HTML5 console: wss://host:port/ticket/<ticket>")
    vmrc_url: str = Field(description="VMware Remote Console link: vmrc://clone:<ticket>@<vcenter>/?moid=<vm>")
    expires_at: datetime | None = Field(description="When the ticket stops working (null: vCenter does not say)")
    position: int = Field(description="Notification position of the ConsoleOpened event")
