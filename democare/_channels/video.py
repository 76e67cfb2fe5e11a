"""The ``video`` channel: signalling for a video session with an agent.

::

    POST   /video/v1/sessions   {"context_id": "CTX-..."?}
        -> 201 {"session_id": "VS-...", "join_token": "...",
                "join_url": "/video/v1/join/VS-...?token=...", "expires_at", "context_id"}
    GET    /video/v1/join/{session_id}?token=...
        -> {"session_id", "status": "waiting_for_agent", "context_id"}
           (403 without the right, unexpired token; 410 once the session ended)
    DELETE /video/v1/sessions/{session_id}  -> {"session_id", "status": "ended", "context_id"}

A session with a context id is listed in that handover for the agent.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Final
from urllib.parse import quote

from aiohttp import web

from democare._appkeys import CONVERSATIONS, VIDEO_SESSIONS
from democare._channels._handover import handover_context_id
from democare._http import ApiError, iso8601, json_response, not_found
from democare._parse import read_json_object
from democare._video_sessions import VideoSession, VideoStatus

TOKEN_PARAMETER: Final = "token"

routes = web.RouteTableDef()


@routes.post("/video/v1/sessions")
async def open_session(request: web.Request) -> web.Response:
    """Open a session and hand back the token and URL that join it."""
    body = await read_json_object(request)
    context_id = handover_context_id(request, body)
    session = request.app[VIDEO_SESSIONS].open(context_id=context_id)
    if context_id is not None:
        request.app[CONVERSATIONS].attach_video_session(context_id, session.session_id)
    join_url = f"/video/v1/join/{session.session_id}?{TOKEN_PARAMETER}={quote(session.join_token)}"
    return json_response(
        {
            "session_id": session.session_id,
            "join_token": session.join_token,
            "join_url": join_url,
            "expires_at": iso8601(session.expires_at),
            "context_id": session.context_id,
        },
        status=HTTPStatus.CREATED,
    )


@routes.get("/video/v1/join/{session_id}")
async def join_session(request: web.Request) -> web.Response:
    """Join a session with its token: the customer waits for the agent."""
    sessions = request.app[VIDEO_SESSIONS]
    session = sessions.get(request.match_info["session_id"])
    if session is None:
        raise not_found()
    if not sessions.check_token(session, request.query.get(TOKEN_PARAMETER, "")):
        raise ApiError(HTTPStatus.FORBIDDEN, "forbidden", "the join token is wrong or expired")
    if session.status is VideoStatus.ENDED:
        raise ApiError(HTTPStatus.GONE, "session_ended")
    return json_response(session_json(session))


@routes.delete("/video/v1/sessions/{session_id}")
async def end_session(request: web.Request) -> web.Response:
    """End a session; ending it again answers the same."""
    session = request.app[VIDEO_SESSIONS].end(request.match_info["session_id"])
    if session is None:
        raise not_found()
    return json_response(session_json(session))


def session_json(session: VideoSession) -> dict[str, object]:
    """A session as joining, ending and the agent's handover view show it (no token)."""
    return {
        "session_id": session.session_id,
        "status": session.status.value,
        "context_id": session.context_id,
    }
