"""Static vocabularies: names, streets, cities, e-mail domains and product page names per country."""

from __future__ import annotations


def _split(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(w.strip() for w in text.split(",") if w.strip()))


# First names per country: (female, male). Accents are deliberate (José, Zoë, Jürgen...).
FIRST_NAMES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "US": (
        _split(
            "Mary, Patricia, Jennifer, Linda, Elizabeth, Barbara, Susan, Jessica, Sarah, Karen, Lisa, Nancy, "
            "Betty, Margaret, Sandra, Ashley, Kimberly, Emily, Donna, Michelle, Carol, Amanda, Dorothy, Melissa, "
            "Deborah, Stephanie, Rebecca, Sharon, Laura, Cynthia, Kathleen, Amy, Angela, Shirley, Anna, Brenda, "
            "Pamela, Emma, Nicole, Helen, Samantha, Katherine, Christine, Debra, Rachel, Carolyn, Janet, Maria, "
            "Olivia, Heather, Madison, Chloé, Zoë, Renée, Sofía, Lucía, Ximena, Valentina, Camila, Guadalupe, "
            "Mei, Aaliyah, Harper, Avery, Brooke, Kayla, Tiffany, Megan, Lauren, Hannah"
        ),
        _split(
            "James, Robert, John, Michael, David, William, Richard, Joseph, Thomas, Christopher, Charles, Daniel, "
            "Matthew, Anthony, Mark, Donald, Steven, Andrew, Paul, Joshua, Kenneth, Kevin, Brian, George, Timothy, "
            "Ronald, Jason, Edward, Jeffrey, Ryan, Jacob, Gary, Nicholas, Eric, Jonathan, Stephen, Larry, Justin, "
            "Scott, Brandon, Benjamin, Samuel, Gregory, Alexander, Patrick, Frank, Raymond, Jack, Dennis, Jerry, "
            "José, Luis, Jesús, Andrés, Ramón, Martín, Carlos, Miguel, Juan, Diego, Wei, Hiroshi, Tyrone, Dwayne, "
            "Cody, Austin, Tyler, Logan, Ethan, Mason, Noah, Liam"
        ),
    ),
    "CA": (
        _split(
            "Emma, Olivia, Charlotte, Amélie, Chloé, Léa, Gabrielle, Camille, Florence, Émilie, Sophie, Julie, "
            "Isabelle, Geneviève, Marie-Ève, Nathalie, Catherine, Valérie, Mélanie, Stéphanie, Sarah, Jessica, "
            "Ashley, Emily, Hannah, Megan, Lauren, Brittany, Amanda, Jennifer, Michelle, Kimberly, Natalie, Avery, "
            "Abigail, Ava, Mia, Zoë, Hélène, Josée, Maude, Océane, Noémie, Rosalie, Anaïs, Priya, Harpreet, Mei, "
            "Aisha, Fatima"
        ),
        _split(
            "Liam, Noah, William, Thomas, Jacob, Logan, Benjamin, Lucas, Nathan, Félix, Olivier, Étienne, Mathieu, "
            "François, Jean-Philippe, Marc-André, Sébastien, Guillaume, Alexandre, Maxime, Gabriel, Samuel, "
            "Antoine, Simon, Vincent, Michael, Ryan, Tyler, Justin, Kevin, Brandon, Matthew, Daniel, Andrew, "
            "Jonathan, Christopher, David, Eric, Jérôme, Rémi, Hugo, Raphaël, Zachary, Owen, Connor, Aiden, "
            "Gurpreet, Arjun, Wei, Omar"
        ),
    ),
    "GB": (
        _split(
            "Olivia, Amelia, Isla, Ava, Emily, Sophia, Grace, Mia, Poppy, Ella, Lily, Evie, Isabella, Sophie, "
            "Chloe, Jessica, Freya, Charlotte, Daisy, Alice, Florence, Ruby, Phoebe, Matilda, Imogen, Harriet, "
            "Eleanor, Rosie, Lucy, Holly, Megan, Hannah, Katie, Lauren, Rebecca, Gemma, Kirsty, Siobhán, Niamh, "
            "Aoife, Catriona, Eilidh, Seren, Carys, Bethan, Zoë, Priya, Aisha, Fatima, Agnieszka"
        ),
        _split(
            "Oliver, George, Harry, Jack, Jacob, Noah, Charlie, Thomas, Oscar, William, James, Henry, Leo, Alfie, "
            "Joshua, Freddie, Archie, Ethan, Isaac, Alexander, Joseph, Edward, Samuel, Max, Daniel, Arthur, Lucas, "
            "Mohammed, Theo, Harrison, Benjamin, Mason, Sebastian, Finley, Adam, Dylan, Callum, Connor, Liam, "
            "Jamie, Rhys, Gareth, Dafydd, Owain, Ciarán, Seán, Hamish, Angus, Rory, Ewan"
        ),
    ),
    "DE": (
        _split(
            "Anna, Emma, Mia, Hannah, Sophia, Lena, Lea, Marie, Laura, Lina, Leonie, Johanna, Clara, Paula, Greta, "
            "Katharina, Julia, Sarah, Lisa, Jana, Sabine, Petra, Ute, Monika, Ursula, Renate, Gisela, Brigitte, "
            "Ingrid, Heike, Anke, Birgit, Claudia, Andrea, Stefanie, Nicole, Sandra, Kerstin, Jördis, Jülide, "
            "Käthe, Bärbel, Dörte, Anneliese, Friederike, Lieselotte, Maren, Merle, Frauke, Svenja"
        ),
        _split(
            "Lukas, Leon, Finn, Jonas, Paul, Ben, Elias, Noah, Felix, Luis, Maximilian, Moritz, Jakob, Niklas, "
            "Tim, Jan, Tobias, Florian, Sebastian, Alexander, Michael, Thomas, Andreas, Stefan, Christian, Markus, "
            "Frank, Klaus, Jürgen, Günter, Dieter, Uwe, Rüdiger, Jörg, Björn, Sören, Torsten, Bernd, Wolfgang, "
            "Helmut, Horst, Matthias, Martin, Philipp, Fabian, Dominik, Kai, Lars, Nils, Ole"
        ),
    ),
    "FR": (
        _split(
            "Louise, Jade, Emma, Alice, Chloé, Léa, Manon, Inès, Camille, Léna, Lina, Zoé, Juliette, Lou, Anaïs, "
            "Océane, Clémence, Mathilde, Élodie, Aurélie, Céline, Hélène, Sophie, Isabelle, Nathalie, Sandrine, "
            "Valérie, Stéphanie, Véronique, Christine, Françoise, Monique, Béatrice, Cécile, Amélie, Margaux, "
            "Noémie, Agathe, Capucine, Éloïse, Maëlle, Gaëlle, Laëtitia, Séverine, Solène, Mélissa, Yasmine, "
            "Fatima, Aïcha, Salomé"
        ),
        _split(
            "Gabriel, Léo, Raphaël, Arthur, Louis, Lucas, Adam, Hugo, Jules, Maël, Nathan, Thomas, Nicolas, "
            "Julien, Pierre, Alexandre, Antoine, Maxime, Guillaume, Romain, Sébastien, Jérôme, Stéphane, Frédéric, "
            "François, Philippe, Michel, Jean, Jean-Pierre, Jean-Luc, Benoît, Cédric, Grégoire, Loïc, Noël, Hervé, "
            "Thierry, Pascal, Olivier, Laurent, Damien, Mathis, Théo, Timothée, Clément, Bastien, Yanis, Karim, "
            "Mehdi, Anaël"
        ),
    ),
}

LAST_NAMES: dict[str, tuple[str, ...]] = {
    "US": _split(
        "Smith, Johnson, Williams, Brown, Jones, Garcia, Miller, Davis, Rodriguez, Martinez, Hernandez, Lopez, "
        "Gonzalez, Wilson, Anderson, Thomas, Taylor, Moore, Jackson, Martin, Lee, Perez, Thompson, White, "
        "Harris, Sanchez, Clark, Ramirez, Lewis, Robinson, Walker, Young, Allen, King, Wright, Scott, Torres, "
        "Nguyen, Hill, Flores, Green, Adams, Nelson, Baker, Hall, Rivera, Campbell, Mitchell, Carter, Roberts, "
        "Gómez, Phillips, Evans, Turner, Díaz, Parker, Cruz, Edwards, Collins, Reyes, Stewart, Morris, Morales, "
        "Murphy, Cook, Rogers, Gutiérrez, Ortiz, Morgan, Cooper, Peterson, Bailey, Reed, Kelly, Howard, Ramos, "
        "Kim, Cox, Ward, Richardson, Watson, Brooks, Chavez, Wood, James, Bennett, Gray, Mendoza, Ruiz, Hughes, "
        "Price, Álvarez, Castillo, Sanders, Patel, Myers, Long, Ross, Foster, Jiménez, Powell, Jenkins, Perry, "
        "Russell, Sullivan, Bell, Coleman, Butler, Henderson, Barnes, González, Fisher, Vasquez, Simmons, "
        "Romero, Jordan, Patterson, Alexander, Hamilton, Graham, Reynolds, Griffin, Wallace, Moreno, West, "
        "Cole, Hayes, Bryant, Herrera, Gibson, Ellis, Tran, Medina, Aguilar, Stevens, Murray, Ford, Castro, "
        "Marshall, Owens, Harrison, Fernández, McDonald, Woods, Washington, Kennedy, Wells, Vargas, Henry, "
        "Chen, Freeman, Webb, Tucker, Guzmán, Burns, Crawford, Olson, Simpson, Porter, Hunter, Gordon, Mendez, "
        "Silva, Shaw, Snyder, Mason, Dixon, Muñoz, Hunt, Hicks, Holmes, Palmer, Wagner, Black, Robertson, "
        "Boyd, Rose, Stone, Salazar, Fox, Warren, Mills, Meyer, Rice, Schmidt, Garza, Daniels, Ferguson, "
        "Nichols, Stephens, Soto, Weaver, Ryan, Gardner, Payne, Grant, Dunn, Kelley, Spencer, Hawkins, "
        "Arnold, Pierce, Vázquez, Hansen, Peters, Santos, Hart, Bradley, Knight, Elliott, Cunningham, Duncan, "
        "Armstrong, Hudson, Carroll, Lane, Riley, Andrews, Alvarado, Ray, Delgado, Berry, Perkins, Hoffman, "
        "Johnston, Matthews, Peña, Richards, Contreras, Willis, Carpenter, Lawrence, Sandoval, O'Brien, "
        "O'Connor, McCarthy, DeLuca, Kowalski, Nowak, Yamamoto, Tanaka, Wong, Singh"
    ),
    "CA": _split(
        "Smith, Brown, Tremblay, Martin, Roy, Wilson, MacDonald, Gagnon, Johnson, Taylor, Côté, Campbell, "
        "Anderson, Leblanc, Lee, Jones, White, Williams, Miller, Thompson, Gauthier, Young, Van, Morin, "
        "Bouchard, Scott, Stewart, Bélanger, Reid, Pelletier, Moore, Lavoie, King, Robinson, Lévesque, Murphy, "
        "Fortin, Gagné, Wong, Clark, Johnston, Clarke, Ross, Walker, Thomas, Boucher, Landry, Kelly, Bergeron, "
        "Poirier, Girard, Ouellet, Lapointe, Savard, Simard, Cloutier, Caron, Beaulieu, Dubois, Lefebvre, "
        "Bérubé, Paquette, Thériault, Légaré, Després, Gélinas, Hébert, Lachance, Nadeau, Leclerc, Marchand, "
        "Fraser, Graham, Hughes, Hamilton, Mitchell, Cameron, Hall, Wright, Chan, Singh, Patel, Nguyen, Li, "
        "Zhang, Wang, Chen, Liu, Kaur, Gill, Sandhu, Sidhu, Grewal, Dhillon, MacLeod, McKenzie, O'Neill, "
        "Sinclair, Bennett, Bell, Harris, Wood, Parsons, Power, Butler, Hill, Baker, Boudreau, Arsenault, "
        "Richard, Cormier, Doiron, Thibodeau, Comeau, Gallant, Aucoin, Babineau, Chiasson, Daigle, Doucet"
    ),
    "GB": _split(
        "Smith, Jones, Williams, Taylor, Brown, Davies, Evans, Wilson, Thomas, Johnson, Roberts, Robinson, "
        "Thompson, Wright, Walker, White, Edwards, Hughes, Green, Hall, Lewis, Harris, Clarke, Patel, Jackson, "
        "Wood, Turner, Martin, Cooper, Hill, Ward, Morris, Moore, Clark, Lee, King, Baker, Harrison, Morgan, "
        "Allen, James, Scott, Phillips, Watson, Davis, Parker, Price, Bennett, Young, Griffiths, Mitchell, "
        "Kelly, Cook, Carter, Richardson, Bailey, Collins, Bell, Shaw, Murphy, Miller, Cox, Richards, Khan, "
        "Marshall, Anderson, Simpson, Ellis, Adams, Singh, Begum, Wilkinson, Foster, Chapman, Powell, Webb, "
        "Rogers, Gray, Mason, Ali, Hunt, Hussain, Campbell, Matthews, Owen, Palmer, Holmes, Mills, Barnes, "
        "Knight, Lloyd, Butler, Russell, Barker, Fisher, Stevens, Jenkins, Murray, Dixon, Harvey, Graham, "
        "Pearson, Ahmed, Fletcher, Walsh, Kaur, Gibson, Howard, Andrews, Stewart, Elliott, Reynolds, Saunders, "
        "Payne, Fox, Ford, Pearce, Day, Brooks, West, Lawrence, Cole, Atkinson, Bradley, Spencer, Gill, "
        "Dawson, Ball, Burton, O'Brien, Watts, Rose, Booth, Perry, Ryan, Grant, Wells, Armstrong, Francis, "
        "Rees, Hayes, Hart, Hudson, Newman, Barrett, Webster, Hunter, Gregory, Carr, Lowe, Page, Marsh, "
        "Riley, Dunn, Woods, Parsons, Berry, Stone, Reid, Holland, Hawkins, Harding, Porter, Robertson, "
        "Newton, Oliver, Reed, Kennedy, Williamson, Bird, Gardner, Shah, Dean, Lane, Cooke, Bates, Henderson, "
        "Parry, Burgess, Bishop, Walton, Burns, Nicholson, Shepherd, Ross, Cross, Long, Freeman, Warren, "
        "Nicholls, Hamilton, Byrne, Sutton, McDonald, Yates, Hodgson, Robson, Curtis, Hopkins, O'Connor, "
        "Harper, Coleman, Watkins, Moss, McCarthy, Chambers, O'Neill, Griffin, Sharp, Hardy, Wheeler, Potter"
    ),
    "DE": _split(
        "Müller, Schmidt, Schneider, Fischer, Weber, Meyer, Wagner, Becker, Schulz, Hoffmann, Schäfer, Koch, "
        "Bauer, Richter, Klein, Wolf, Schröder, Neumann, Schwarz, Zimmermann, Braun, Krüger, Hofmann, "
        "Hartmann, Lange, Schmitt, Werner, Schmitz, Krause, Meier, Lehmann, Schmid, Schulze, Maier, Köhler, "
        "Herrmann, König, Walter, Mayer, Huber, Kaiser, Fuchs, Peters, Lang, Scholz, Möller, Weiß, Jung, Hahn, "
        "Schubert, Vogel, Friedrich, Keller, Günther, Frank, Berger, Winkler, Roth, Beck, Lorenz, Baumann, "
        "Franke, Albrecht, Schuster, Simon, Ludwig, Böhm, Winter, Kraus, Martin, Schumacher, Krämer, Vogt, "
        "Stein, Jäger, Otto, Sommer, Groß, Seidel, Heinrich, Brandt, Haas, Schreiber, Graf, Schulte, "
        "Dietrich, Ziegler, Kuhn, Kühn, Pohl, Engel, Horn, Busch, Bergmann, Thomas, Voigt, Sauer, Arnold, "
        "Wolff, Pfeiffer, Lindner, Ernst, Götz, Hübner, Kröger, Lößner, Nußbaum, Brückner, Dörr, Jürgens, "
        "Kessler, Lenz, Marx, Nowak, Özdemir, Yılmaz, Kaya, Şahin, Kowalski, Wójcik, Petrović, Hansen, "
        "Jansen, Thiel, Ahrens, Behrens, Böttcher, Gärtner, Hölzer, Mäder, Rößler, Straßer, Weiß, Fröhlich, "
        "Brügge, Lüdtke, Schütz, Blümel, Tröger, Wächter, Düring, Fürst, Grün, Hüttner, Kühnel, Mühlbauer"
    ),
    "FR": _split(
        "Martin, Bernard, Thomas, Petit, Robert, Richard, Durand, Dubois, Moreau, Laurent, Simon, Michel, "
        "Lefèvre, Leroy, Roux, David, Bertrand, Morel, Fournier, Girard, Bonnet, Dupont, Lambert, Fontaine, "
        "Rousseau, Vincent, Muller, Lefebvre, Faure, André, Mercier, Blanc, Guérin, Boyer, Garnier, Chevalier, "
        "François, Legrand, Gauthier, Garcia, Perrin, Robin, Clément, Morin, Nicolas, Henry, Roussel, Mathieu, "
        "Gautier, Masson, Marchand, Duval, Denis, Dumont, Marie, Lemaire, Noël, Meyer, Dufour, Meunier, Brun, "
        "Blanchard, Giraud, Joly, Rivière, Lucas, Brunet, Gaillard, Barbier, Arnaud, Martinez, Gérard, Roche, "
        "Renard, Schmitt, Roy, Leroux, Colin, Vidal, Caron, Picard, Roger, Fabre, Aubert, Lemoine, Renaud, "
        "Dumas, Lacroix, Olivier, Philippe, Bourgeois, Pierre, Benoît, Rey, Leclerc, Payet, Rolland, Leclercq, "
        "Guillaume, Lecomte, Lopez, Jean, Dupuy, Guillot, Hubert, Berger, Carpentier, Sanchez, Dupuis, Moulin, "
        "Louis, Deschamps, Huet, Vasseur, Perez, Boucher, Fleury, Royer, Klein, Jacquet, Adam, Paris, Poirier, "
        "Marty, Aubry, Guyot, Carré, Charles, Renault, Charpentier, Ménard, Maillard, Baron, Bertin, Bailly, "
        "Hervé, Schneider, Fernandez, Le Gall, Collet, Léger, Bouvier, Julien, Prévost, Millet, Perrot, "
        "Daniel, Le Roux, Cousin, Germain, Breton, Besson, Langlois, Rémy, Le Goff, Pelletier, Lévêque, "
        "Perrier, Leblanc, Barré, Lebrun, Marchal, Weber, Mallet, Hamon, Boulanger, Jacob, Monnier, Michaud, "
        "Rodriguez, Guichard, Gillet, Étienne, Grondin, Poulain, Tessier, Chevallier, Collin, Chauvin, Da Silva, "
        "Bouchet, Gay, Lemaître, Bénard, Maréchal, Humbert, Reynaud, Antoine, Hoarau, Perret, Barthélémy, "
        "Cordier, Pichon, Lejeune, Gilbert, Lamy, Delaunay, Pasquier, Carpentier, Lamotte, Benoit, Bégué"
    ),
}

# Street base names and street types per country: (type, abbreviation, type goes before the name).
STREET_NAMES: dict[str, tuple[str, ...]] = {
    "US": _split(
        "Main, Oak, Pine, Maple, Cedar, Elm, Washington, Lake, Hill, Park, Walnut, Sunset, Lincoln, Jackson, "
        "Church, River, Highland, Madison, Franklin, Jefferson, Spring, Willow, Meadow, Forest, Chestnut, "
        "Lakeview, Ridge, Valley, Hickory, Birch, Adams, Monroe, Cherry, Mill, Union, Center, Grove, Dogwood, "
        "Magnolia, Sycamore"
    ),
    "CA": _split(
        "King, Queen, Yonge, Bloor, Dundas, Wellington, Bank, Elgin, Sherbrooke, Sainte-Catherine, Maple, "
        "Main, Church, Victoria, Albert, Princess, Bay, College, Spadina, Carling, Rideau, Laurier, Somerset, "
        "Dufferin, Bathurst, Jarvis, Parliament, Richmond, Adelaide, Front"
    ),
    "GB": _split(
        "High, Station, Main, Park, Church, London, Victoria, Green, Manor, Kings, Queens, Grange, North, "
        "South, Mill, New, Alexandra, Albert, York, Windsor, Springfield, Highfield, Chester, Orchard, Oxford, "
        "Cambridge, Richmond, Beech, Elm, Cedar, Meadow, Westfield, Balmoral, Heather, Rosemary"
    ),
    "DE": _split(
        "Haupt, Schul, Garten, Bahnhof, Dorf, Berg, Kirch, Wald, Ring, Linden, Goethe, Schiller, Mozart, "
        "Beethoven, Friedrich, Wilhelm, Bismarck, Kant, Rosen, Birken, Eichen, Tannen, Feld, Wiesen, Sonnen, "
        "Mühlen, Brunnen, Markt, Post, Jahn, Luisen, Königs, Kaiser, Frieden, Uhland"
    ),
    "FR": _split(
        "de la Paix, Victor Hugo, de la République, Jean Jaurès, du Général de Gaulle, Pasteur, de la Gare, "
        "Jules Ferry, du Moulin, des Écoles, de l'Église, Gambetta, Voltaire, Carnot, Émile Zola, de Verdun, "
        "Nationale, des Lilas, du Château, Saint-Michel, des Acacias, de la Liberté, Foch, Anatole France, "
        "Louis Pasteur, de Paris, du Marché, des Tilleuls, Jean Moulin, de Strasbourg"
    ),
}

#: Per country: list of (long form, abbreviation). The DE types are suffixes glued to the name.
STREET_TYPES: dict[str, tuple[tuple[str, str], ...]] = {
    "US": (
        ("Street", "St."),
        ("Avenue", "Ave."),
        ("Road", "Rd."),
        ("Drive", "Dr."),
        ("Lane", "Ln."),
        ("Boulevard", "Blvd."),
        ("Court", "Ct."),
        ("Place", "Pl."),
    ),
    "CA": (
        ("Street", "St."),
        ("Avenue", "Ave."),
        ("Road", "Rd."),
        ("Drive", "Dr."),
        ("Crescent", "Cres."),
        ("Boulevard", "Blvd."),
    ),
    "GB": (
        ("Street", "St"),
        ("Road", "Rd"),
        ("Lane", "Ln"),
        ("Avenue", "Ave"),
        ("Close", "Cl"),
        ("Crescent", "Cres"),
        ("Gardens", "Gdns"),
        ("Terrace", "Terr"),
    ),
    "DE": (("straße", "str."), ("weg", "weg"), ("allee", "allee"), ("platz", "pl.")),
    "FR": (("rue", "r."), ("avenue", "av."), ("boulevard", "bd"), ("place", "pl."), ("allée", "all.")),
}

#: Cities per country: (name, tier 1-3, postcode prefix, timezone index)
CITIES: dict[str, tuple[tuple[str, int, str, int], ...]] = {
    "US": (
        ("New York", 1, "100", 0),
        ("Los Angeles", 1, "900", 2),
        ("Chicago", 1, "606", 1),
        ("Boston", 2, "021", 0),
        ("Seattle", 2, "981", 2),
        ("Atlanta", 2, "303", 0),
        ("Dallas", 2, "752", 1),
        ("Austin", 2, "787", 1),
        ("Miami", 2, "331", 0),
        ("San Diego", 2, "921", 2),
        ("Portland", 2, "972", 2),
        ("Minneapolis", 2, "554", 1),
        ("Albany", 3, "122", 0),
        ("Madison", 3, "537", 1),
        ("Fresno", 3, "937", 2),
        ("Spokane", 3, "992", 2),
        ("Knoxville", 3, "379", 0),
        ("Omaha", 3, "681", 1),
        ("Tulsa", 3, "741", 1),
        ("Dayton", 3, "454", 0),
    ),
    "CA": (
        ("Toronto", 1, "M", 3),
        ("Montréal", 1, "H", 3),
        ("Ottawa", 2, "K", 3),
        ("Hamilton", 2, "L", 3),
        ("Québec", 2, "G", 3),
        ("London", 3, "N", 3),
        ("Kingston", 3, "K", 3),
        ("Windsor", 3, "N", 3),
    ),
    "GB": (
        ("London", 1, "SW", 4),
        ("Manchester", 1, "M", 4),
        ("Birmingham", 1, "B", 4),
        ("Leeds", 2, "LS", 4),
        ("Glasgow", 2, "G", 4),
        ("Bristol", 2, "BS", 4),
        ("Liverpool", 2, "L", 4),
        ("Edinburgh", 2, "EH", 4),
        ("Cardiff", 3, "CF", 4),
        ("Oxford", 3, "OX", 4),
        ("York", 3, "YO", 4),
        ("Norwich", 3, "NR", 4),
        ("Exeter", 3, "EX", 4),
    ),
    "DE": (
        ("Berlin", 1, "10", 5),
        ("Hamburg", 1, "20", 5),
        ("München", 1, "80", 5),
        ("Köln", 1, "50", 5),
        ("Frankfurt am Main", 2, "60", 5),
        ("Stuttgart", 2, "70", 5),
        ("Düsseldorf", 2, "40", 5),
        ("Leipzig", 2, "04", 5),
        ("Dresden", 2, "01", 5),
        ("Hannover", 2, "30", 5),
        ("Nürnberg", 3, "90", 5),
        ("Bremen", 3, "28", 5),
        ("Freiburg im Breisgau", 3, "79", 5),
        ("Münster", 3, "48", 5),
    ),
    "FR": (
        ("Paris", 1, "750", 6),
        ("Marseille", 1, "130", 6),
        ("Lyon", 1, "690", 6),
        ("Toulouse", 2, "310", 6),
        ("Nice", 2, "060", 6),
        ("Nantes", 2, "440", 6),
        ("Strasbourg", 2, "670", 6),
        ("Montpellier", 2, "340", 6),
        ("Bordeaux", 2, "330", 6),
        ("Lille", 2, "590", 6),
        ("Rennes", 3, "350", 6),
        ("Reims", 3, "511", 6),
        ("Grenoble", 3, "380", 6),
        ("Dijon", 3, "210", 6),
        ("Angers", 3, "490", 6),
    ),
}

#: E-mail domains per country with weights; gmail.com first everywhere.
EMAIL_DOMAINS: dict[str, tuple[tuple[str, float], ...]] = {
    "US": (
        ("gmail.com", 0.40),
        ("yahoo.com", 0.15),
        ("outlook.com", 0.12),
        ("hotmail.com", 0.10),
        ("icloud.com", 0.12),
        ("aol.com", 0.04),
        ("comcast.net", 0.07),
    ),
    "CA": (
        ("gmail.com", 0.40),
        ("hotmail.ca", 0.12),
        ("yahoo.ca", 0.10),
        ("outlook.com", 0.12),
        ("icloud.com", 0.10),
        ("shaw.ca", 0.08),
        ("videotron.ca", 0.08),
    ),
    "GB": (
        ("gmail.com", 0.35),
        ("hotmail.co.uk", 0.15),
        ("yahoo.co.uk", 0.12),
        ("outlook.com", 0.12),
        ("btinternet.com", 0.12),
        ("icloud.com", 0.08),
        ("sky.com", 0.06),
    ),
    "DE": (
        ("gmail.com", 0.25),
        ("gmx.de", 0.22),
        ("web.de", 0.22),
        ("t-online.de", 0.12),
        ("outlook.de", 0.08),
        ("yahoo.de", 0.06),
        ("posteo.de", 0.05),
    ),
    "FR": (
        ("gmail.com", 0.35),
        ("orange.fr", 0.18),
        ("free.fr", 0.12),
        ("hotmail.fr", 0.12),
        ("laposte.net", 0.10),
        ("sfr.fr", 0.08),
        ("yahoo.fr", 0.05),
    ),
}

#: Domains for a second ("work" or "old") address some people use for one of their accounts.
SECONDARY_DOMAINS: tuple[str, ...] = (
    "protonmail.com",
    "mail.com",
    "fastmail.com",
    "zoho.com",
    "acme-corp.com",
    "northwind.net",
    "contoso.org",
    "globex.io",
)

PAGE_NAMES: tuple[str, ...] = ("Home", "Category", "Product", "Search", "Cart", "Account")
GMAIL_TAGS: tuple[str, ...] = ("shop", "store", "deals", "news", "retail")
