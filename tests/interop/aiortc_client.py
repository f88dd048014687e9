#!/usr/bin/env python3
"""A Parley client that is not a browser, written from docs/protocol.md alone.

It uses aiortc (Python's WebRTC) for the media and the `websockets` package
for signaling, and follows the document section by section; comments name
the section each step comes from. The test crates/parley/tests/aiortc_interop.rs
runs it against a real server and checks the JSON it prints.

    aiortc_client.py --url ws://127.0.0.1:8080/ws --room r --participants 2 --seconds 10

Each participant joins, publishes audio and video, answers every subscribe
offer and counts the frames it decodes from each other participant. With --only-video-codec H264 every participant of this process can send and
decode H264 and nothing else (aiortc's codec table is narrowed): a device
that cannot decode VP8. The server must then get the publishers of other
processes to send H264.
"""

import argparse
import asyncio
import json
import re
import sys
import time

import websockets
import aiortc.codecs
from aiortc import (
    AudioStreamTrack,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCSessionDescription,
    VideoStreamTrack,
)


def msids(sdp):
    """mid -> participant id, from each m-line's `a=msid:<participant-id> <track-id>`
    ("Connections and media", Whose track is it?)."""
    owners, mid = {}, None
    for line in sdp.splitlines():
        if line.startswith("m="):
            mid = None
        elif line.startswith("a=mid:"):
            mid = line[6:].strip()
        elif line.startswith("a=msid:") and mid is not None:
            owners[mid] = line[7:].split()[0]
    return owners


def codec_of(sdp, mid):
    """The first codec the answer accepts in section `mid`."""
    section = re.split(r"\r?\nm=", sdp)
    for s in section:
        if re.search(rf"a=mid:{re.escape(mid)}\r?$", s, re.M):
            m = re.search(r"a=rtpmap:\d+ ([A-Za-z0-9-]+)/", s)
            return m.group(1) if m else None
    return None


class Participant:
    def __init__(self, url, room, name, publish_codec):
        self.url, self.room, self.name = url, room, name
        self.publish_codec = publish_codec
        self.id = None
        self.ws = None
        self.publish = None
        self.subscribe = None
        self.owners = {}
        self.frames = {"video": {}, "audio": {}}
        self.answered_codecs = {}
        self.errors = []
        self.states = {"publish": "new", "subscribe": "new"}
        self.publish_codec_requests = []
        self.consumers = []

    async def send(self, message):
        await self.ws.send(json.dumps(message))

    async def run(self, seconds):
        # Transport: a WebSocket at /ws; a non-browser client sends no Origin.
        async with websockets.connect(self.url, max_size=1 << 20) as ws:
            self.ws = ws
            # join: version 1, a room name and a display name.
            await self.send({"type": "join", "version": 1, "room": self.room, "name": self.name})
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                try:
                    raw = await asyncio.wait_for(ws.recv(), timeout=0.5)
                except asyncio.TimeoutError:
                    continue
                await self.handle(json.loads(raw))
            # leave: acknowledged with `left`.
            await self.send({"type": "leave"})
            try:
                while True:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), timeout=3))
                    if msg["type"] == "left":
                        break
            except (asyncio.TimeoutError, websockets.ConnectionClosed):
                self.errors.append("no left after leave")
        for task in self.consumers:
            task.cancel()
        for pc in (self.publish, self.subscribe):
            if pc is not None:
                await pc.close()

    async def handle(self, msg):
        kind = msg["type"]
        if kind == "joined":
            self.id = msg["self"]["id"]
            # Publishing: after joined, create the publish connection, add
            # tracks and offer. (A subscribe offer may already be waiting
            # behind `joined`; it is handled when read, in order.)
            await self.start_publishing()
        elif kind == "answer" and msg["pc"] == "publish":
            await self.publish.setRemoteDescription(RTCSessionDescription(msg["sdp"], "answer"))
        elif kind == "offer" and msg["pc"] == "subscribe":
            await self.answer_subscribe(msg)
        elif kind == "publish_codec":
            # The server asks for a track in another codec: put it first and offer again.
            self.publish_codec_requests.append(msg["codec"])
            self.publish_codec = msg["codec"]
            self.prefer(self.publish, "video", msg["codec"])
            await self.offer_publish()
        elif kind == "error":
            self.errors.append(f'{msg["code"]}: {msg["message"]}')

    def prefer(self, pc, kind, codec):
        """Codec preferences with `codec` (e.g. H264) first, or only it."""
        caps = RTCRtpReceiver.getCapabilities(kind).codecs
        wanted = [c for c in caps if c.mimeType.lower() == f"{kind}/{codec.lower()}"]
        others = [c for c in caps if c not in wanted]
        for t in pc.getTransceivers():
            if t.kind == kind:
                t.setCodecPreferences(wanted + others)

    async def start_publishing(self):
        self.publish = RTCPeerConnection()
        self.watch(self.publish, "publish")
        # Audio Opus; video VP8, VP9 or H264 ("Connections and media").
        self.publish.addTransceiver(AudioStreamTrack(), direction="sendonly")
        self.publish.addTransceiver(VideoStreamTrack(), direction="sendonly")
        if self.publish_codec:
            self.prefer(self.publish, "video", self.publish_codec)
        await self.offer_publish()

    async def offer_publish(self):
        # offer {pc: publish}: the client offers; the server answers. aiortc
        # gathers its candidates before the SDP is done, so nothing is trickled.
        await self.publish.setLocalDescription(await self.publish.createOffer())
        await self.send({"type": "offer", "pc": "publish", "sdp": self.publish.localDescription.sdp})

    async def answer_subscribe(self, msg):
        # renew: true: replace the subscribe connection before applying.
        if self.subscribe is None or msg.get("renew"):
            if self.subscribe is not None:
                await self.subscribe.close()
            self.subscribe = RTCPeerConnection()
            self.watch(self.subscribe, "subscribe")
            self.subscribe.on("track", self.on_track)
        self.owners.update(msids(msg["sdp"]))
        await self.subscribe.setRemoteDescription(RTCSessionDescription(msg["sdp"], "offer"))
        await self.subscribe.setLocalDescription(await self.subscribe.createAnswer())
        answer = self.subscribe.localDescription.sdp
        for mid in self.owners:
            codec = codec_of(answer, mid)
            if codec:
                self.answered_codecs[mid] = codec
        # answer {pc: subscribe}, repeating offer_id.
        await self.send(
            {"type": "answer", "pc": "subscribe", "offer_id": msg["offer_id"], "sdp": answer}
        )

    def on_track(self, track):
        mid = next(
            (t.mid for t in self.subscribe.getTransceivers() if t.receiver.track is track), None
        )
        owner = self.owners.get(mid, "?")
        self.consumers.append(asyncio.ensure_future(self.consume(track, owner)))

    async def consume(self, track, owner):
        counts = self.frames[track.kind]
        while True:
            try:
                await track.recv()
            except Exception:
                return
            counts[owner] = counts.get(owner, 0) + 1

    def watch(self, pc, name):
        @pc.on("connectionstatechange")
        def changed():
            if pc.connectionState == "connected" or self.states[name] != "connected":
                self.states[name] = pc.connectionState

    def report(self):
        return {
            "name": self.name,
            "id": self.id,
            "states": self.states,
            "video_frames": self.frames["video"],
            "audio_frames": self.frames["audio"],
            "answered_codecs": self.answered_codecs,
            "publish_codec_requests": self.publish_codec_requests,
            "errors": self.errors,
        }


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--room", default="aiortc")
    parser.add_argument("--name", default="aiortc", help="display names are NAME-1, NAME-2, ...")
    parser.add_argument("--participants", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument(
        "--publish-codec", action="append", default=[],
        help="per participant, in order: the video codec it prefers to send (or 'any')",
    )
    parser.add_argument(
        "--only-video-codec",
        help="the one video codec this process can send and decode, e.g. H264",
    )
    args = parser.parse_args()
    if args.only_video_codec:
        wanted = f"video/{args.only_video_codec.lower()}"
        video = aiortc.codecs.CODECS["video"]
        kept = [c for c in video if c.mimeType.lower() == wanted]
        kept_pts = {c.payloadType for c in kept}
        kept += [
            c for c in video
            if c.mimeType.lower() == "video/rtx" and c.parameters.get("apt") in kept_pts
        ]
        video[:] = kept

    def nth(values, i):
        v = values[i] if i < len(values) else "any"
        return None if v == "any" else v

    people = [
        Participant(args.url, args.room, f"{args.name}-{i + 1}", nth(args.publish_codec, i))
        for i in range(args.participants)
    ]
    await asyncio.gather(*(p.run(args.seconds) for p in people))
    json.dump({"participants": [p.report() for p in people]}, sys.stdout)
    print()


if __name__ == "__main__":
    asyncio.run(main())
