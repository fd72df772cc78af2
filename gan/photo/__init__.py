"""Your own photo into a model: open it, find and align the face, project it into W.

    photo = open_photo("me.jpg")                       # gan.photo.image: RGB uint8, EXIF-rotated
    faces = detect_faces(photo.image)                  # gan.photo.mtcnn: boxes + 5 landmarks
    aligned = align_face(photo.image, faces[0].landmarks, 256, FFHQ)   # gan.photo.align
    result = project(G, aligned.image, ProjectConfig.preset("default"), D=D)  # gan.photo.project
    save_projection("me.npz", result)

No Qt here; the explorer reaches this package through explorer/project_bridge.py.
"""
